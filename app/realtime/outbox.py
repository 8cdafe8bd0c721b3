"""A connection's bounded outgoing queue. Fan-out never waits on it: a push that finds
it full reports the reader too slow, and the connection is closed (4008)."""

from __future__ import annotations

import asyncio
from collections import deque


class Outbox:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._frames: deque[tuple[str, int]] = deque()
        self._ready = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: str, seq: int = 0) -> bool:
        """Queue a frame without waiting; False if the queue is full."""
        if len(self._frames) >= self.limit:
            return False
        self._frames.append((frame, seq))
        self._ready.set()
        if len(self._frames) > self.limit // 2:
            self._drained.clear()
        return True

    async def push_paced(self, frame: str, seq: int = 0) -> None:
        """Queue a replayed frame, waiting while the queue is more than half full, so a long
        replay is paced by the reader and leaves room for live frames."""
        while len(self._frames) > self.limit // 2:
            self._drained.clear()
            await self._drained.wait()
        self._frames.append((frame, seq))
        self._ready.set()

    def lowest_seq(self) -> int | None:
        """The lowest ``seq`` still waiting to be sent, if any."""
        return min((seq for _, seq in self._frames if seq), default=None)

    async def pop(self) -> tuple[str, int]:
        while not self._frames:
            self._ready.clear()
            await self._ready.wait()
        item = self._frames.popleft()
        if len(self._frames) <= self.limit // 2:
            self._drained.set()
        return item
