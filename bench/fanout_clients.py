"""Subscriber processes for ``bench.fanout``: thousands of websocket connections per
process, kept lean so that the clients cost little CPU next to the server they measure.
Each connection is a bare asyncio Protocol on uvloop (no task, no stream reader), with
its own minimal RFC 6455 client: the opening handshake by hand (the accept key checked,
an extension the client did not offer refused; a failed handshake is counted as a
connect error), and a parser for what a server sends (unmasked frames) that reads every
frame a chunk of data holds in place, by offset, without copying the buffer per frame.
Text messages, fragmented ones included, are checked to be UTF-8; a ping is answered
with a (masked) pong; a close is answered and recorded. Anything else (a masked or
binary frame, reserved bits or opcodes, a stray continuation, an oversized or fragmented
control frame) fails the connection with 1002 (1007 for text that is not UTF-8) and is
counted, by reason, as a protocol error: the benchmark reports them, never skips them.
``relay-deflate`` connections offer permessage-deflate as Chromium does and inflate each
compressed message (RSV1), with a decompressor kept between messages unless the server
answered ``server_no_context_takeover``.

What a connection records of each message (the stamp; duplicate, out-of-order and
per-serial counts) is described in bench/fanout_record.py.

The parent (bench/fanout_pool.py) drives a process through a pipe: ``open``
connections, ``counts`` (cheap, polled while a phase drains), ``stats`` (with latency
histograms), ``stop``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import resource
import time
import zlib
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from websockets.exceptions import InvalidHeader
from websockets.headers import parse_extension

from bench.fanout_record import PhaseStats, Recorder, Seen

# --- the websocket client --------------------------------------------------------------

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
MAX_MESSAGE = 2**20
MAX_HANDSHAKE = 16 * 1024
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
PROTOCOL_ERROR = 1002
INVALID_DATA = 1007  # a text message that is not UTF-8
ABNORMAL = 1006  # what the connection is counted as when it ends without a close frame


class ProtocolError(Exception):
    """The server sent something this client does not accept: fail the connection."""


def accept_key(key: bytes) -> str:
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def masked(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    repeated = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final frame from a client: masked, as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    return head + mask + masked(payload, mask)


class Subscriber(asyncio.Protocol):
    """One subscribed connection, for one of three servers:

    ``relay``: Authorization header, then ``subscribe`` to the operation (API.md 8);
    ``raw``: a ``subscribe`` frame holding the token;
    ``socketio``: Engine.IO v4 over websocket, socket.io CONNECT with ``{"token"}``.
    """

    def __init__(
        self,
        kind: str,
        target: tuple[str, int, str],
        token: str,
        recorder: Recorder,
        ready: asyncio.Future[None],
    ) -> None:
        self.kind = kind
        self.target = target  # host, port, path
        self.token = token
        self.recorder = recorder
        self.ready = ready
        self.relay = kind.startswith("relay")
        self.by_seq = self.relay
        self.deflate = kind == "relay-deflate"  # offer permessage-deflate
        self._window: int | None = None  # the server's window bits, once deflate is agreed
        self._decoder: Any = None  # kept between messages if the server keeps its context
        self.subscribed = False
        self.transport: asyncio.Transport | None = None
        self.seen = Seen()
        self.close_code: int | None = None  # from the server's close frame
        self._key = base64.b64encode(os.urandom(16))
        self._open = False  # the handshake is done
        self._failed = False  # read nothing more
        self._aborted = False  # we dropped it (the run is over)
        self._buffer = bytearray()  # the handshake, or an incomplete frame, so far
        self._message: bytearray | None = None  # a fragmented text message, so far

    # --- transport events --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        assert self.transport is not None
        host, port, path = self.target
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.relay:
            lines.append(f"Authorization: Bearer {self.token}")
        if self.deflate:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return
        if not self._open:
            data = self._handshake(data)
            if not data:
                return
        buffer = self._buffer
        chunk: bytes | bytearray = data
        if buffer:  # an incomplete frame is waiting: one copy per chunk, not per frame
            buffer += data
            chunk = buffer
        try:
            used = self._frames(chunk, time.time())
        except (ProtocolError, UnicodeDecodeError, ValueError, zlib.error) as exc:
            self._protocol_error(exc)
            return
        if chunk is buffer:
            del buffer[:used]
        elif used < len(chunk):
            buffer += memoryview(chunk)[used:]

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"lost before subscribed: {exc}"))
        elif self.subscribed:
            self.recorder.lost += 1
        if self._open and not self._aborted:
            self.recorder.closes[self.close_code or ABNORMAL] += 1

    # --- the opening handshake ---------------------------------------------------------

    def _handshake(self, data: bytes) -> bytes:
        """Read the server's answer to the upgrade; return the bytes after it."""
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HANDSHAKE:
                self._fail("handshake answer too long")
            return b""
        head, rest = bytes(buffer[:end]).decode("latin-1"), bytes(buffer[end + 4 :])
        buffer.clear()
        status, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status.split(" ", 2)[1:2] != ["101"]:
            self._fail(f"handshake answered {status[:80]!r}")
        elif (
            headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in headers.get("connection", "").lower()
            or headers.get("sec-websocket-accept") != accept_key(self._key)
        ):
            self._fail(f"bad upgrade answer: {headers}")
        elif headers.get("sec-websocket-extensions") and not self._agree(
            headers["sec-websocket-extensions"]
        ):
            self._fail(f"unrequested extension {headers['sec-websocket-extensions']!r}")
        else:
            self._open = True
            self._on_open()
            return rest
        return b""

    def _agree(self, answer: str) -> bool:
        """Take the server's permessage-deflate answer, if we offered it and it is valid."""
        try:
            [(name, params)] = parse_extension(answer)
        except (InvalidHeader, ValueError):
            return False
        settings = dict(params)
        if not self.deflate or name != "permessage-deflate":
            return False
        window = settings.get("server_max_window_bits") or "15"
        if not window.isdigit() or not 8 <= int(window) <= 15:
            return False
        self._window = int(window)
        if "server_no_context_takeover" not in settings:
            self._decoder = zlib.decompressobj(-self._window)
        return True

    def _on_open(self) -> None:
        if self.relay:
            self._send(b'{"type":"subscribe","id":"s1","operation":"BENCH"}')
        elif self.kind == "raw":
            self._send(
                b'{"type":"subscribe","operation":"BENCH","token":"%s"}' % self.token.encode()
            )
        # socket.io: wait for the Engine.IO open packet

    # --- frames ------------------------------------------------------------------------

    def _frames(self, data: bytes | bytearray, now: float) -> int:
        """Handle every complete frame in ``data``; return how many bytes they took."""
        pos, end = 0, len(data)
        while end - pos >= 2 and not self._failed:
            first, second = data[pos], data[pos + 1]
            length, start = second & 0x7F, pos + 2
            if length >= 126:  # 126: a 2-byte extended length follows, 127: an 8-byte one
                start += 2 if length == 126 else 8
                if start > end:
                    break
                length = int.from_bytes(data[pos + 2 : start], "big")
            if second & 0x80:
                raise ProtocolError("masked frame from the server")
            if first & 0x70 and (first & 0x30 or self._window is None):
                raise ProtocolError("reserved bits set, with no extension negotiated")
            if length > MAX_MESSAGE:
                raise ProtocolError(f"frame of {length} bytes")
            stop = start + length
            if stop > end:
                break
            pos = stop
            if first == 0x80 | TEXT and self._message is None:  # the common case
                self._text(data, start, stop, now)
            elif first == 0xC0 | TEXT and self._message is None:  # compressed, whole
                self._inflate(data, start, stop, now)
            elif first & 0x40:
                raise ProtocolError("compressed frame other than a whole text message")
            else:
                self._frame(first & 0x0F, bool(first & 0x80), data, start, stop, now)
        return pos

    def _frame(
        self, opcode: int, fin: bool, data: bytes | bytearray, start: int, stop: int, now: float
    ) -> None:
        if opcode >= CLOSE:
            if not fin or stop - start > 125:
                raise ProtocolError("fragmented or oversized control frame")
            if opcode == PING:
                self._write(client_frame(PONG, bytes(data[start:stop])))
            elif opcode == CLOSE:
                self._on_close(bytes(data[start:stop]))
            elif opcode != PONG:
                raise ProtocolError(f"reserved opcode {opcode:#x}")
        elif opcode == CONT:
            message = self._message
            if message is None:
                raise ProtocolError("continuation frame outside a fragmented message")
            message += data[start:stop]
            if len(message) > MAX_MESSAGE:
                raise ProtocolError(f"message over {MAX_MESSAGE} bytes")
            if fin:
                self._message = None
                self._text(message, 0, len(message), now)
        elif opcode == TEXT:
            if self._message is not None:
                raise ProtocolError("text frame inside a fragmented message")
            self._message = bytearray(data[start:stop])  # not fin: the final one is inline
        elif opcode == BINARY:
            raise ProtocolError("binary message (every server here sends text)")
        else:
            raise ProtocolError(f"reserved opcode {opcode:#x}")

    def _text(self, data: bytes | bytearray, start: int, stop: int, now: float) -> None:
        """A whole text message, ``data[start:stop]``."""
        data[start:stop].decode()  # a text message must be UTF-8 (UnicodeDecodeError if not)
        if self.subscribed and self.recorder.record(data, start, stop, now, self.seen, self.by_seq):
            return
        self._on_control(bytes(data[start:stop]))

    def _inflate(self, data: bytes | bytearray, start: int, stop: int, now: float) -> None:
        """A whole compressed text message, ``data[start:stop]`` (RFC 7692)."""
        assert self._window is not None
        decoder = self._decoder or zlib.decompressobj(-self._window)
        text = decoder.decompress(bytes(data[start:stop]) + b"\x00\x00\xff\xff", MAX_MESSAGE)
        if decoder.unconsumed_tail:
            raise ProtocolError(f"message over {MAX_MESSAGE} bytes")
        self._text(text, 0, len(text), now)

    def _on_close(self, payload: bytes) -> None:
        if len(payload) == 1:
            raise ProtocolError("close frame with a 1-byte body")
        code = int.from_bytes(payload[:2], "big") if payload else 1005
        payload[2:].decode()  # the reason must be UTF-8
        self.close_code = code
        self._failed = True  # read nothing more
        self._write(client_frame(CLOSE, payload[:2]))  # echo the code; the server closes TCP
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed {code} {payload[2:122]!r}"))

    def _protocol_error(self, exc: Exception) -> None:
        self.recorder.protocol_errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
        code = INVALID_DATA if isinstance(exc, UnicodeDecodeError) else PROTOCOL_ERROR
        self._write(client_frame(CLOSE, code.to_bytes(2, "big")))
        self.close_code = code
        self._fail(f"protocol error: {exc}")

    # --- what a subscriber says ----------------------------------------------------------

    def _write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def _send(self, text: bytes) -> None:
        self._write(client_frame(TEXT, text))

    def _on_control(self, data: bytes) -> None:
        if self.kind == "socketio":
            if data == b"2":  # Engine.IO ping
                self._send(b"3")
            elif data.startswith(b"0{"):  # Engine.IO open: join the namespace
                self._send(b'40{"token":"%s"}' % self.token.encode())
            elif data.startswith(b"40"):
                self._subscribed()
            elif data.startswith(b"44"):
                self._fail(f"refused: {data[:120]!r}")
            return
        if b'"subscribed"' in data:
            self._subscribed()
        elif b'"error"' in data and not self.subscribed:
            self._fail(f"refused: {data[:120]!r}")

    def _subscribed(self) -> None:
        if not self.subscribed:
            self.subscribed = True
            self.recorder.ready += 1
            if not self.ready.done():
                self.ready.set_result(None)

    def _fail(self, reason: str) -> None:
        self._failed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        self._aborted = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class Process:
    """The state of one subscriber process."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.subscribers: list[Subscriber] = []

    async def open(
        self,
        *,
        kind: str,
        host: str,
        port: int,
        path: str,
        tokens: list[str],
        count: int,
        concurrency: int,
        limit: float,
    ) -> dict[str, Any]:
        """Open ``count`` subscribed connections, ``concurrency`` handshakes at a time,
        giving up on whatever is not subscribed after ``limit`` seconds."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()

        async def one(i: int) -> None:
            async with gate:
                ready: asyncio.Future[None] = loop.create_future()
                token = tokens[i % len(tokens)]
                subscriber = Subscriber(kind, (host, port, path), token, self.recorder, ready)
                try:
                    await asyncio.wait_for(
                        loop.create_connection(lambda: subscriber, host, port), 15
                    )
                    await asyncio.wait_for(ready, 15)
                except Exception as exc:
                    errors[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
                    subscriber.close()
                    if not ready.done():
                        ready.cancel()
                    return
                self.subscribers.append(subscriber)

        began, already = time.monotonic(), len(self.subscribers)
        if count <= 0:
            return {"ready": 0, "errors": {}, "seconds": 0.0}
        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        _, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
        if pending:
            errors["opening timed out"] += len(pending)
            await asyncio.wait(pending, timeout=5)
        return {
            "ready": sum(s.subscribed for s in self.subscribers[already:]),
            "errors": dict(errors),
            "seconds": time.monotonic() - began,
        }

    def counts(self) -> dict[int, int]:
        return {phase: stats.count for phase, stats in self.recorder.phases.items()}

    def stats(self, phase: int) -> dict[str, Any]:
        stats = self.recorder.phases.get(phase) or PhaseStats()
        return {
            "count": stats.count,
            "first": stats.first,
            "last": stats.last,
            "buckets": stats.buckets,
            "open": sum(1 for s in self.subscribers if s.subscribed and not _closed(s)),
            "lost": self.recorder.lost,
            "closes": dict(self.recorder.closes),
            "protocol_errors": dict(self.recorder.protocol_errors),
            "duplicates": stats.duplicates,
            "out_of_order": stats.out_of_order,
            "by_serial": dict(stats.by_serial),
        }

    def close_all(self) -> None:
        for subscriber in self.subscribers:
            subscriber.close()
        self.subscribers = []


def _closed(subscriber: Subscriber) -> bool:
    return subscriber.transport is None or subscriber.transport.is_closing()


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def _serve(pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def on_readable() -> None:
        try:
            commands.put_nowait(pipe.recv())
        except (EOFError, OSError):  # the parent is gone
            loop.remove_reader(pipe.fileno())
            commands.put_nowait(("stop",))

    loop.add_reader(pipe.fileno(), on_readable)
    state = Process()
    try:
        while True:
            command, *args = await commands.get()
            if command == "open":
                pipe.send(await state.open(**args[0]))
            elif command == "counts":
                pipe.send(state.counts())
            elif command == "stats":
                pipe.send(state.stats(args[0]))
            elif command == "stop":
                state.close_all()
                with contextlib.suppress(OSError):
                    pipe.send("stopped")
                return
    finally:
        state.close_all()
        with contextlib.suppress(Exception):
            loop.remove_reader(pipe.fileno())


def run(pipe: Connection) -> None:
    """Entry point of a subscriber process."""
    import uvloop

    raise_open_files_limit()
    uvloop.run(_serve(pipe))
