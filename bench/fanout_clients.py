"""Subscriber processes for ``bench.fanout``: thousands of websocket connections per
process, kept lean so that the clients cost little CPU next to the server on a small
machine. Each connection is a sans-I/O ``websockets`` ClientProtocol driven by a bare
asyncio Protocol on uvloop: no task and no stream reader per connection.

Every alert carries ``bench-ts:<phase>:<unix time it was due>:<serial>`` (in the relay's
``reference`` field, verbatim in the peers' payloads); a connection finds it with one
bytes search, without parsing the JSON, and files the latency under that phase.

Each connection also checks what it receives. An event is identified by its ``seq`` on
the relay (the peers repeat one payload, so there by the publisher's serial number): a
second delivery of one to the same connection is a *duplicate* and does not count as
delivered; on the relay, one that arrives after a higher ``seq`` is also counted as *out
of order*. Deliveries are counted per serial, so the parent can tell alerts the
publisher saw accepted from alerts the server committed although the publisher did not
hear so (answered too late, cancelled at the phase's time limit, or refused).

The parent (bench/fanout_pool.py) drives a process through a pipe: ``open``
connections, ``counts`` (cheap, polled while a phase drains), ``stats`` (with latency
histograms), ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

MARKER = b"bench-ts:"
FINE_BUCKETS = 20_000  # 0.1 ms buckets up to 2 s
COARSE_BUCKETS = 11_800  # then 10 ms buckets up to 120 s
BUCKETS = FINE_BUCKETS + COARSE_BUCKETS


def bucket_of(latency: float) -> int:
    ms = latency * 1000.0
    if ms < 2000.0:
        return int(ms * 10.0) if ms > 0.0 else 0
    return FINE_BUCKETS + min(int((ms - 2000.0) / 10.0), COARSE_BUCKETS - 1)


def bucket_ms(index: int) -> float:
    """The upper edge of a bucket, in milliseconds."""
    if index < FINE_BUCKETS:
        return (index + 1) / 10.0
    return 2000.0 + (index - FINE_BUCKETS + 1) * 10.0


def percentile_ms(buckets: list[int], q: float) -> float:
    total = sum(buckets)
    if not total:
        return float("nan")
    rank = max(1, int(q * total + 0.5))
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return bucket_ms(index)
    return bucket_ms(BUCKETS - 1)


@dataclass(slots=True)
class PhaseStats:
    count: int = 0  # deliveries, less duplicates and out-of-order ones
    first: float = 0.0
    last: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    duplicates: int = 0  # an event this connection had already received
    out_of_order: int = 0  # relay: an event below one this connection had received
    by_serial: Counter[int] = field(default_factory=Counter)


@dataclass(slots=True)
class Seen:
    """What one connection has received: a bitmap of event ids, and the highest."""

    ids: bytearray = field(default_factory=bytearray)
    highest: int = -1

    def first_time(self, ident: int) -> bool:
        ids = self.ids
        if ident >= len(ids):
            ids.extend(bytes(max(ident + 1 - len(ids), 256)))
        elif ids[ident]:
            return False
        ids[ident] = 1
        return True


SEQ = b'"seq":'


@dataclass(slots=True)
class Recorder:
    """What this process's connections received, per phase."""

    phases: dict[int, PhaseStats] = field(default_factory=dict)
    closes: Counter[int] = field(default_factory=Counter)
    ready: int = 0
    lost: int = 0

    def record(self, data: bytes, now: float, seen: Seen, by_seq: bool) -> bool:
        start = data.find(MARKER)
        if start < 0:
            return False
        start += len(MARKER)
        colon = data.find(b":", start)
        second = data.find(b":", colon + 1)
        end = data.find(b'"', second)
        phase = int(data[start:colon])
        serial = int(data[second + 1 : end])
        stats = self.phases.get(phase)
        if stats is None:
            stats = self.phases[phase] = PhaseStats(first=now)
        ident = serial
        if by_seq:  # the relay's frame: the event's own seq comes first in it
            at = data.find(SEQ) + len(SEQ)
            ident = int(data[at : data.find(b",", at)])
        if not seen.first_time(ident):
            stats.duplicates += 1
            return True
        if ident < seen.highest:  # still a delivery, but against the contract's order
            stats.out_of_order += 1
        else:
            seen.highest = ident
        stats.count += 1
        stats.last = now
        stats.by_serial[serial] += 1
        stats.buckets[bucket_of(now - float(data[colon + 1 : second]))] += 1
        return True


class Subscriber(asyncio.Protocol):
    """One subscribed connection, for one of three servers:

    ``relay``: Authorization header, then ``subscribe`` to the operation (API.md 8);
    ``raw``: a ``subscribe`` frame holding the token;
    ``socketio``: Engine.IO v4 over websocket, socket.io CONNECT with ``{"token"}``.
    """

    def __init__(
        self, kind: str, url: str, token: str, recorder: Recorder, ready: asyncio.Future[None]
    ) -> None:
        self.kind = kind
        self.token = token
        self.recorder = recorder
        self.ready = ready
        self.subscribed = False
        self.transport: asyncio.Transport | None = None
        self.protocol = ClientProtocol(parse_uri(url), max_size=2**20)
        self._parts: list[bytes] = []
        self.seen = Seen()

    # --- transport events --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        request = self.protocol.connect()
        if self.kind == "relay":
            request.headers["Authorization"] = f"Bearer {self.token}"
        self.protocol.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        if events:
            now = time.time()
            for event in events:
                if isinstance(event, Frame):
                    self._on_frame(event, now)
                elif isinstance(event, Response):
                    self._on_response(event)
        self._flush()
        if protocol.close_expected() and self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"lost before subscribed: {exc}"))
        elif self.subscribed:
            self.recorder.lost += 1
        code = self.protocol.close_code
        if code is not None:
            self.recorder.closes[code] += 1

    # --- protocol ----------------------------------------------------------------------

    def _flush(self) -> None:
        writes = self.protocol.data_to_send()
        if writes and self.transport is not None and not self.transport.is_closing():
            for chunk in writes:
                if chunk:
                    self.transport.write(chunk)
                else:  # SEND_EOF
                    with contextlib.suppress(OSError, RuntimeError):
                        self.transport.write_eof()

    def _send(self, text: bytes) -> None:
        self.protocol.send_text(text)

    def _on_response(self, response: Response) -> None:
        if response.status_code != 101 or self.protocol.handshake_exc is not None:
            self._fail(f"handshake answered {response.status_code}")
            return
        if self.kind == "relay":
            self._send(b'{"type":"subscribe","id":"s1","operation":"BENCH"}')
        elif self.kind == "raw":
            self._send(
                b'{"type":"subscribe","operation":"BENCH","token":"%s"}' % self.token.encode()
            )
        # socket.io: wait for the Engine.IO open packet

    def _on_frame(self, frame: Frame, now: float) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.CONT:
            if not frame.fin:
                self._parts.append(bytes(frame.data))
                return
            data = bytes(frame.data)
            if self._parts:
                data = b"".join((*self._parts, data))
                self._parts = []
            if self.subscribed and self.recorder.record(data, now, self.seen, self.kind == "relay"):
                return
            self._on_control(data)

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
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
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
        url = f"ws://{host}:{port}{path}"
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()

        async def one(i: int) -> None:
            async with gate:
                ready: asyncio.Future[None] = loop.create_future()
                token = tokens[i % len(tokens)]
                subscriber = Subscriber(kind, url, token, self.recorder, ready)
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
        stats = self.recorder.phases.get(phase)
        return {
            "count": stats.count if stats else 0,
            "first": stats.first if stats else 0.0,
            "last": stats.last if stats else 0.0,
            "buckets": stats.buckets if stats else [0] * BUCKETS,
            "open": sum(1 for s in self.subscribers if s.subscribed and not _closed(s)),
            "lost": self.recorder.lost,
            "closes": dict(self.recorder.closes),
            "duplicates": stats.duplicates if stats else 0,
            "out_of_order": stats.out_of_order if stats else 0,
            "by_serial": dict(stats.by_serial) if stats else {},
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
