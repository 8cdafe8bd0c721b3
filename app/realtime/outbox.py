"""A connection's bounded outgoing queue, and the wire it drains into.

Fan-out never waits on a queue: a push that finds it full reports the reader too slow,
and the connection is closed (4008). Frames do not wait for a task to wake either: a
``Flusher`` writes the queues that received frames on the next turn of the event loop
(``FLUSH_SLICE`` connections per turn), straight into each connection's transport, so
the frames a batch of events queued for one connection leave in one write. Frames stay
queued only while the transport pushes back (the reader is slow), and are written when
it lets go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("relay.stream")

Frame = str | bytes  # a text message: str, or bytes already encoded as UTF-8

WRITE_CHUNK = 64  # frames handed to a transport at once, between checks that it takes more
# Connections written per turn of the event loop: about 1 ms of writes here, so a request
# waiting for the loop (each of its statements does, once) waits that long, not 10 ms.
FLUSH_SLICE = 64


class Wire(Protocol):
    """Where a connection's text messages go (supplied by the server)."""

    def writable(self) -> bool:
        """The connection is open and its transport takes data without pushing back."""
        ...

    def write(self, messages: list[bytes]) -> None:
        """Send these text messages (UTF-8), in order, without waiting (the list is the
        wire's to keep)."""
        ...

    def on_writable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the transport stops pushing back."""
        ...


class Flusher:
    """Writes the outboxes that received frames, once per turn of the event loop."""

    def __init__(self) -> None:
        self.on_sent: Callable[[int], None] | None = None  # told how many events went out
        self._dirty: list[Outbox] = []
        self._scheduled = False

    def mark(self, outbox: Outbox) -> None:
        self._dirty.append(outbox)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        # A pass over thousands of connections yields to the loop every FLUSH_SLICE of them,
        # so that requests (the next alerts' commits) go on while fan-out does.
        dirty = self._dirty
        if len(dirty) > FLUSH_SLICE:
            dirty, self._dirty = dirty[:FLUSH_SLICE], dirty[FLUSH_SLICE:]
            asyncio.get_running_loop().call_soon(self.flush)
        else:
            self._dirty = []
            self._scheduled = False
        sent = 0
        for outbox in dirty:
            try:
                sent += outbox.flush()
            except Exception:  # one broken connection must not stall the others
                log.exception("writing to a stream connection failed")
        if sent and self.on_sent is not None:
            self.on_sent(sent)


class Outbox:
    __slots__ = (
        "_closed",
        "_drained",
        "_flusher",
        "_frames",
        "_marked",
        "_seqs",
        "_wire",
        "limit",
        "sent_seq",
    )

    def __init__(self, limit: int, wire: Wire, flusher: Flusher) -> None:
        self.limit = limit
        self.sent_seq = 0  # the highest event seq handed to the wire
        self._wire = wire
        self._flusher = flusher
        # Lists, not a deque: they are written whole, and an empty deque costs 600 bytes
        # per idle connection. A frame's seq is 0 when it carries no event.
        self._frames: list[bytes] = []
        self._seqs: list[int] = []
        self._marked = False
        self._closed = False
        self._drained: asyncio.Event | None = None  # made when a replay first waits
        wire.on_writable(self._mark)

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: Frame, seq: int = 0) -> bool:
        """Queue a frame without waiting; False if the queue is full."""
        if len(self._frames) >= self.limit:
            return False
        if not self._closed:  # once the connection is closing, nothing more goes out
            self._append(frame, seq)
        return True

    async def push_paced(self, frame: Frame, seq: int = 0) -> None:
        """Queue a replayed frame, waiting while the queue is more than half full, so a long
        replay is paced by the reader and leaves room for live frames."""
        while len(self._frames) > self.limit // 2:
            if self._drained is None:
                self._drained = asyncio.Event()
            self._drained.clear()
            await self._drained.wait()
        if not self._closed:
            self._append(frame, seq)

    def _append(self, frame: Frame, seq: int) -> None:
        self._frames.append(frame.encode() if isinstance(frame, str) else frame)
        self._seqs.append(seq)
        if not self._marked:
            self._mark()

    def close(self) -> None:
        """Drop what is queued and send nothing more (the connection is being closed)."""
        self._closed = True
        self._frames.clear()
        self._seqs.clear()
        if self._drained is not None:
            self._drained.set()

    def lowest_seq(self) -> int | None:
        """The lowest ``seq`` still waiting to be sent, if any."""
        return min((seq for seq in self._seqs if seq), default=None)

    def _mark(self) -> None:
        self._marked = True
        self._flusher.mark(self)

    def flush(self) -> int:
        """Write what is queued, in chunks, for as long as the wire takes it; returns how
        many events went out."""
        self._marked = False
        frames, seqs, wire = self._frames, self._seqs, self._wire
        if not frames or self._closed:
            return 0
        if len(frames) <= WRITE_CHUNK and wire.writable():  # the common case: all at once
            self._frames, self._seqs = [], []
            wire.write(frames)
            highest = max(seqs)
            if highest > self.sent_seq:
                self.sent_seq = highest
            if self._drained is not None:
                self._drained.set()
            return len(seqs) - seqs.count(0)
        start, end, sent = 0, len(frames), 0
        while start < end and wire.writable():
            stop = start + WRITE_CHUNK
            wire.write(frames[start:stop])
            written = seqs[start:stop]
            start += len(written)
            sent += len(written) - written.count(0)
            highest = max(written)
            if highest > self.sent_seq:
                self.sent_seq = highest
        if start:
            del frames[:start]
            del seqs[:start]
        if self._drained is not None and len(frames) <= self.limit // 2:
            self._drained.set()
        return sent
