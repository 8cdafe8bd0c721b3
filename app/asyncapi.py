"""The AsyncAPI 3 document of the stream, generated from the frame models in
app/schemas/stream.py, the same ones the server encodes and validates with."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from app.schemas.stream import CLIENT_FRAMES, SERVER_FRAMES, Frame

REF = "#/components/schemas/{model}"

SUMMARIES: dict[str, str] = {
    "AuthFrame": "Authenticate from a browser (first frame, within 10 s)",
    "SubscribeFrame": "Subscribe to an operation, optionally replaying from `since`",
    "UnsubscribeFrame": "End a subscription",
    "PingFrame": "Application-level ping",
    "WelcomeFrame": "Sent once authenticated",
    "SubscribedFrame": "Confirms a subscription, before any of its events",
    "UnsubscribedFrame": "Confirms an unsubscription",
    "EventFrame": "An event of a subscription, in seq order",
    "ErrorFrame": "A frame that could not be served; the connection stays open",
    "PongFrame": "Answer to a ping",
}

CLOSE_CODES = {
    "1001": "server shutting down: reconnect (to any node) with since",
    "1008": "too many malformed frames",
    "1009": "a frame over 64 KiB",
    "4001": "bad, expired or revoked key (first-frame auth), or revoked while open",
    "4003": "admin keys read no alerts (first-frame auth)",
    "4008": "reader too slow; the reason holds the last seq sent: reconnect with since",
}


@cache
def document() -> dict[str, Any]:
    frames: tuple[type[Frame], ...] = (*CLIENT_FRAMES, *SERVER_FRAMES)
    _, schemas = models_json_schema(
        [(frame, "serialization") for frame in frames], ref_template=REF
    )
    messages = {
        frame.__name__: {
            "name": frame.__name__,
            "summary": SUMMARIES.get(frame.__name__, ""),
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model=frame.__name__)},
        }
        for frame in frames
    }

    def refs(group: tuple[type[Frame], ...]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/stream/messages/{frame.__name__}"} for frame in group]

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Seizure Relay stream",
            "version": "1.0.0",
            "description": (
                "Live events of the operations an administration takes part in, exactly as "
                "the sharing rule allows, resumable from any seq without gap or duplicate. "
                "Close codes: "
                + "; ".join(f"{code} {meaning}" for code, meaning in CLOSE_CODES.items())
            ),
        },
        "servers": {
            "relay": {
                "host": "localhost:8000",
                "protocol": "ws",
                "description": "Use wss behind TLS in production",
            }
        },
        "channels": {
            "stream": {
                "address": "/v1/stream",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "headers": {
                            "type": "object",
                            "properties": {
                                "Authorization": {
                                    "type": "string",
                                    "description": "Bearer <API key>; or send an auth frame",
                                },
                                "Origin": {
                                    "type": "string",
                                    "description": "Checked against RELAY_ALLOWED_ORIGINS",
                                },
                                "Sec-WebSocket-Extensions": {
                                    "type": "string",
                                    "description": (
                                        "permessage-deflate is accepted (unless "
                                        "RELAY_STREAM_COMPRESSION=off) with "
                                        "server_no_context_takeover, "
                                        "client_no_context_takeover and a server "
                                        "window of at most 12 bits (an offer of 8 "
                                        "gets no compression)"
                                    ),
                                },
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            }
        },
        "operations": {
            "clientFrames": {
                "action": "receive",
                "channel": {"$ref": "#/channels/stream"},
                "summary": "Frames a client sends",
                "messages": refs(CLIENT_FRAMES),
            },
            "serverFrames": {
                "action": "send",
                "channel": {"$ref": "#/channels/stream"},
                "summary": "Frames the server sends",
                "messages": refs(SERVER_FRAMES),
            },
        },
        "components": {"schemas": schemas.get("$defs", {}), "messages": messages},
    }
