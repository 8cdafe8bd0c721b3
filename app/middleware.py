"""The outermost HTTP layer: request ids, body limits, content types, access logs, metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    AppError,
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    is_unavailable,
    problem_response,
)
from app.logs import key_id, request_id
from app.metrics import Metrics

log = logging.getLogger("relay.http")

BODY_METHODS = {"POST", "PUT", "PATCH"}
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class RequestGuard:
    """Refuses oversized (413) and non-JSON (415) bodies before the app parses them,
    tags every response with ``X-Request-ID`` and ``Cache-Control: no-store`` under ``/v1``,
    and logs and counts every request once."""

    def __init__(self, app: ASGIApp, *, max_body: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        offered = headers.get("x-request-id", "")
        rid = offered if SAFE_REQUEST_ID.match(offered) else uuid.uuid4().hex
        rid_token, key_token = request_id.set(rid), key_id.set(None)
        status = 500
        path: str = scope["path"]
        started = time.perf_counter()
        responded = False

        async def send_tagged(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = rid
                if path.startswith("/v1/") and "cache-control" not in out:
                    out["Cache-Control"] = "no-store"
            await send(message)

        try:
            refusal: AppError | None = None
            if scope["method"] in BODY_METHODS:
                refusal, receive = await self._screen_body(headers, receive)
            if refusal is not None:
                await problem_response(refusal)(scope, receive, send_tagged)
            else:
                try:
                    await self.app(scope, receive, send_tagged)
                except Exception as exc:
                    # Answer here rather than let Starlette re-raise to the server, which
                    # would drop the client's keep-alive connection without a response.
                    if status != 500 or responded:
                        raise
                    error = ServiceUnavailable() if is_unavailable(exc) else AppError()
                    if not isinstance(error, ServiceUnavailable):
                        log.exception("unhandled error on %s %s", scope["method"], path)
                    await problem_response(error)(scope, receive, send_tagged)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.request_seconds.labels(scope["method"], template).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )
            request_id.reset(rid_token)
            key_id.reset(key_token)

    async def _screen_body(
        self, headers: Headers, receive: Receive
    ) -> tuple[AppError | None, Receive]:
        """Read the body (at most ``max_body`` bytes) so that it can be refused unparsed."""
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return BadRequest("Invalid Content-Length"), receive
            if int(declared) > self.max_body:
                return PayloadTooLarge(
                    f"Request bodies are limited to {self.max_body} bytes"
                ), receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return PayloadTooLarge(
                    f"Request bodies are limited to {self.max_body} bytes"
                ), receive
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not is_json(headers.get("content-type")):
            return UnsupportedMediaType("Request bodies must be JSON (application/json)"), receive
        return None, replaying(body, receive)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` whole first, then whatever ``receive`` gives."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
