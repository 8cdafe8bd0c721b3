"""Running uvicorn for the relay.

The websocket protocol class below is uvicorn's sans-I/O one with these differences:

- uvicorn closes open websockets with 1012 ("service restart") when it shuts down,
  before the application hears of it; the contract promises 1001 ("going away").
- It offers the application a *wire* (the ASGI extension ``relay.wire``): text messages
  written straight to the transport, framed once, without a task or an ASGI ``send``
  per message. Fan-out to thousands of connections spends most of its time there
  (docs/benchmarks.md). The wire reports when the transport pushes back, so the
  application's bounded queues still decide who is too slow.
- It lets the application *hand the connection off* (the ASGI extension
  ``relay.handoff``): from then on each message and the disconnect are passed to a
  handler as they arrive, and the application's coroutine may return without the
  connection being closed. An idle subscriber then keeps no task, no coroutine stack
  through the framework and no ASGI scope, only its protocol, wire and handler: what
  makes thousands of open connections cheap (docs/benchmarks.md).

- With per-message compression on (``RELAY_STREAM_COMPRESSION=shared``, the default),
  it accepts permessage-deflate only without context takeover on the server's side, so
  that a message compresses to the same bytes for every connection: each distinct
  message (an event's, per subscription id) is deflated once, and the same frame is
  written to every connection that negotiated the same window (``SharedDeflate``),
  instead of once per connection by a compressor each connection keeps.

It is named by import string, so every worker process loads it too.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import uvicorn
from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.protocol import State

GOING_AWAY = 1001
INVALID_DATA = 1007
MAX_FRAME_BYTES = 64 * 1024
WIRE_EXTENSION = "relay.wire"
HANDOFF_EXTENSION = "relay.handoff"
OPEN = State.OPEN

log = logging.getLogger("uvicorn.error")


class Handler(Protocol):
    """Takes a handed-off connection's messages as they arrive (see ``relay.handoff``)."""

    def received(self, text: str | None) -> None:
        """A whole message: its text, or None for a binary one."""
        ...

    def disconnected(self, code: int) -> None:
        """The connection is over (called once); nothing more arrives."""
        ...


_SHORT_HEADERS = [bytes((0x81, n)) for n in range(126)]  # FIN + text, unmasked (server)
_SHORT_DEFLATED_HEADERS = [bytes((0xC1, n)) for n in range(126)]  # FIN + RSV1 + text


def text_frame_header(length: int, *, deflated: bool = False) -> bytes:
    """The header of one unfragmented text frame sent by a server (``deflated``: its
    payload is compressed, RFC 7692)."""
    if length < 126:
        return (_SHORT_DEFLATED_HEADERS if deflated else _SHORT_HEADERS)[length]
    first = b"\xc1" if deflated else b"\x81"
    if length < 1 << 16:
        return first + b"\x7e" + length.to_bytes(2, "big")
    return first + b"\x7f" + length.to_bytes(8, "big")


# What the server accepts when compression is on. No context takeover on the server's side
# makes a message's compressed bytes the same for every connection that receives it
# (SharedDeflate); none on the client's side spares each connection a decompressor kept
# between messages, and a 4 KiB client window keeps the one it needs per message small.
MEM_LEVEL = 5  # as uvicorn's own factory
WINDOW_BITS = 12
DEFLATE_EXTENSIONS = [
    ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=WINDOW_BITS,
        client_max_window_bits=WINDOW_BITS,
        compress_settings={"memLevel": MEM_LEVEL},
    )
]


class SharedDeflate:
    """Messages compressed once for every connection that negotiated the same window: a
    fan-out writes one event's message (the same bytes for every subscription of the same
    id) to thousands of connections. Messages under MIN_BYTES, and any that would not
    shrink, go uncompressed (RFC 7692 lets each message choose). The cache holds at most
    BUDGET bytes of messages and frames, and starts over when full."""

    MIN_BYTES = 128
    BUDGET = 8 * 1024 * 1024

    def __init__(self) -> None:
        self._frames: dict[tuple[int, bytes], bytes] = {}
        self._held = 0

    def frame(self, message: bytes, window_bits: int) -> bytes:
        """``message`` as one text frame, header included: compressed if that pays."""
        if len(message) < self.MIN_BYTES:
            return text_frame_header(len(message)) + message
        key = (window_bits, message)
        frame = self._frames.get(key)
        if frame is None:
            encoder = zlib.compressobj(wbits=-window_bits, memLevel=MEM_LEVEL)
            data = encoder.compress(message) + encoder.flush(zlib.Z_SYNC_FLUSH)
            data = data.removesuffix(b"\x00\x00\xff\xff")  # RFC 7692, section 7.2.1
            if len(data) < len(message):
                frame = text_frame_header(len(data), deflated=True) + data
            else:
                frame = text_frame_header(len(message)) + message
            if self._held > self.BUDGET:
                self._frames.clear()
                self._held = 0
            self._frames[key] = frame
            self._held += len(message) + len(frame)
        return frame


SHARED_DEFLATE = SharedDeflate()


def shared_window(extensions: list[Extension]) -> int | None:
    """The server's window bits if the only extension negotiated is permessage-deflate
    without server context takeover (what ``DEFLATE_EXTENSIONS`` accepts), else None."""
    if len(extensions) != 1:
        return None
    [extension] = extensions
    if isinstance(extension, PerMessageDeflate) and extension.local_no_context_takeover:
        return extension.local_max_window_bits
    return None


class TransportWire:
    """Text messages to one websocket's transport (see ``app.realtime.outbox.Wire``)."""

    __slots__ = ("_callback", "_protocol")

    def __init__(self, protocol: GoingAwayWebSocketProtocol) -> None:
        self._protocol = protocol
        self._callback: Callable[[], None] | None = None

    def writable(self) -> bool:
        protocol = self._protocol
        return (
            protocol.conn.state is OPEN
            and protocol.writable.is_set()
            and not protocol.close_sent
            and not protocol.transport.is_closing()
        )

    def write(self, messages: list[bytes]) -> None:
        protocol = self._protocol
        conn = protocol.conn
        if conn.extensions:
            window = shared_window(conn.extensions)
            if window is not None:
                frame = SHARED_DEFLATE.frame
                protocol.transport.write(b"".join([frame(m, window) for m in messages]))
                return
            # Anything else negotiated: let websockets frame (and compress) each one.
            for message in messages:
                conn.send_text(message)
            protocol.transport.write(b"".join(conn.data_to_send()))
            return
        if len(messages) == 1:
            message = messages[0]
            protocol.transport.write(text_frame_header(len(message)) + message)
            return
        parts: list[bytes] = []
        for message in messages:
            parts.append(text_frame_header(len(message)))
            parts.append(message)
        protocol.transport.write(b"".join(parts))

    def on_writable(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def resumed(self) -> None:
        if self._callback is not None:
            self._callback()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake, as an ASGI ``websocket.close`` would."""
        self._protocol.close(code, reason)


class Inbox:
    """What uvicorn's protocol asks of its queue of received messages (one reader), without
    the three deques of an ``asyncio.Queue``: 2 KiB less per open websocket.

    Once the connection is handed off, it queues nothing: it passes each message to the
    handler, and the first disconnect (uvicorn may report one more as the transport goes).
    """

    __slots__ = ("_items", "_waiter", "handler")

    def __init__(self) -> None:
        self._items: list[ASGIReceiveEvent] = []
        self._waiter: asyncio.Future[None] | None = None
        self.handler: Handler | None = None

    def hand_off(self, handler: Handler) -> None:
        """Pass what is queued, then every later message, to ``handler``."""
        items, self._items = self._items, []
        self.handler = handler
        for item in items:
            self.put_nowait(item)

    def put_nowait(self, item: ASGIReceiveEvent) -> None:
        handler = self.handler
        if handler is not None:
            if item["type"] == "websocket.receive":
                handler.received(item.get("text"))
            elif item["type"] == "websocket.disconnect":
                self.handler = _GONE
                handler.disconnected(item.get("code", 1005))
            return
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> ASGIReceiveEvent:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class Flag:
    """What uvicorn's protocol asks of its ``writable`` event, without an empty deque of
    waiters per open websocket."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter
        return True


class _Gone:
    """The handler of a connection that is over: whatever still arrives is dropped."""

    __slots__ = ()

    def received(self, text: str | None) -> None:
        pass

    def disconnected(self, code: int) -> None:
        pass


_GONE = _Gone()


class GoingAwayWebSocketProtocol(WebSocketsSansIOProtocol):
    wire: TransportWire | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.ws_per_message_deflate:  # what uvicorn accepts, made shareable
            self.conn.available_extensions = DEFLATE_EXTENSIONS
        self.inbox = Inbox()
        self.queue = self.inbox  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]

    async def run_asgi(self) -> None:
        # uvicorn's, but for the extensions and a connection the application handed off,
        # which stays open when the application returns.
        self.wire = TransportWire(self)
        extensions: dict[str, object] = self.scope["extensions"]  # type: ignore[assignment]
        extensions[WIRE_EXTENSION] = self.wire
        extensions[HANDOFF_EXTENSION] = self.hand_off
        handed_off = False
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            log.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                log.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                log.error("ASGI callable should return None, but returned '%s'.", result)
            handed_off = self.inbox.handler is not None
        if handed_off:
            # The scope (headers, state, these extensions) is not read again.
            self.scope = _HANDED_OFF_SCOPE
            return
        if self.close_timer is None:
            self.transport.close()

    def hand_off(self, handler: Handler) -> Callable[[bool], None]:
        """The ``relay.handoff`` extension: messages go to ``handler`` from now on. Returns
        the switch by which the handler pauses and resumes reading (TCP flow control)."""
        if not self.handshake_complete or self.initial_response is not None:
            raise RuntimeError("only an accepted websocket can be handed off")
        self.inbox.hand_off(handler)
        self.set_reading(True)
        return self.set_reading

    def set_reading(self, reading: bool) -> None:
        if reading == self.read_paused and not self.transport.is_closing():
            self.read_paused = not reading
            if reading:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def send_receive_event_to_app(self) -> None:
        handler = self.inbox.handler
        if handler is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:  # past our close: the peer's messages are not read
            return
        if self.curr_msg_data_type != "text":
            handler.received(None)
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.conn.send_close(INVALID_DATA)
            self.handle_parser_exception()
            return
        handler.received(text)

    def close(self, code: int, reason: str) -> None:
        """Close a handed-off connection, as an ASGI ``websocket.close`` would."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.set_reading(True)  # read on until the peer answers the close
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.request is not None:
            # The handshake's request and response (3 to 4 KiB of headers) are not read
            # again; an idle connection should not keep them. The request's headers are
            # emptied in place: websockets' parser keeps the request itself as long as the
            # connection lasts.
            self.request.headers.clear()
            self.request = self.response = None  # type: ignore[assignment]

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.wire is not None:
            self.wire.resumed()

    def shutdown(self) -> None:
        if self.close_sent or not self.handshake_complete:
            super().shutdown()
            return
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
        self.conn.send_close(GOING_AWAY, "server shutting down")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()


_HANDED_OFF_SCOPE: Any = {"type": "websocket", "handed_off": True}


SERVER_OPTIONS: dict[str, object] = {
    "factory": True,
    "log_config": None,
    "access_log": False,
    "proxy_headers": False,
    "ws": "app.server:GoingAwayWebSocketProtocol",
    "ws_max_size": MAX_FRAME_BYTES,  # a larger frame is closed with 1009
    "ws_ping_interval": 20.0,  # ping every 20 s, drop a peer silent for 20 more
    "ws_ping_timeout": 20.0,
    # Per-message compression, when on (``run``), is shared between connections: see
    # SharedDeflate and docs/benchmarks.md.
    "ws_per_message_deflate": False,
    "timeout_graceful_shutdown": 5,
}


def run(*, host: str, port: int, workers: int, compression: bool = False) -> None:
    """Serve ``create_app`` with ``workers`` processes."""
    options = {**SERVER_OPTIONS, "ws_per_message_deflate": compression}
    uvicorn.run("app.main:create_app", host=host, port=port, workers=workers, **options)  # type: ignore[arg-type]
