"""Delivers committed events to the hub strictly in ``seq`` order, exactly once.

Batches arrive from this process's committer and, through the broker, from other
processes, in any order and possibly not at all. Each batch says which ``seq`` range it
covers; a batch that does not start where delivery stands reveals a gap, which is
filled from the event log before the batch is delivered. A periodic poll of the log's
head fills gaps the broker never announced. Because ``seq`` follows commit order (see
app/committer.py), whatever the log holds up to a committed head is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from app.realtime.events import Batch, LiveEvent

log = logging.getLogger("relay.sequencer")

Fetch = Callable[[int, int, int], Awaitable[list[LiveEvent]]]
"""``fetch(after, up_to, limit)``: committed events with ``after < seq <= up_to``, in order."""
Head = Callable[[], Awaitable[int]]


class Sequencer:
    def __init__(
        self,
        *,
        deliver: Callable[[LiveEvent], None],
        fetch: Fetch,
        head: Head,
        poll_interval: float = 1.0,
        page: int = 1000,
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        self._deliver = deliver
        self._fetch = fetch
        self._head = head
        self._poll_interval = poll_interval
        self._page = page
        self._on_lag = on_lag
        self.delivered_head = 0
        self._inbox: deque[Batch | None] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.delivered_head = await self._head()
        self._tasks = [
            asyncio.create_task(self._drain(), name="sequencer"),
            asyncio.create_task(self._poll(), name="sequencer-poll"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def offer(self, batch: Batch) -> None:
        """Take a committed batch (from this process or another)."""
        self._inbox.append(batch)
        self._wake.set()

    def nudge(self) -> None:
        """Check the log's head now (``None`` in the inbox means: poll)."""
        self._inbox.append(None)
        self._wake.set()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            self.nudge()

    async def _drain(self) -> None:
        while True:
            while not self._inbox:
                self._wake.clear()
                await self._wake.wait()
            batch = self._inbox.popleft()
            try:
                if batch is None:
                    await self._fill(await self._head())
                else:
                    await self._take(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store is away: the next poll retries from where delivery stands.
                log.warning("could not fill from the event log; will retry", exc_info=True)

    async def _take(self, batch: Batch) -> None:
        if batch.last <= self.delivered_head:
            return
        if batch.after > self.delivered_head:
            await self._fill(batch.after)
        for event in batch.events:
            if event.seq > self.delivered_head:
                self._deliver(event)
        self.delivered_head = max(self.delivered_head, batch.last)
        if self._on_lag is not None and batch.committed_at and batch.events:
            self._on_lag(max(0.0, time.time() - batch.committed_at))

    async def _fill(self, up_to: int) -> None:
        while self.delivered_head < up_to:
            events = await self._fetch(self.delivered_head, up_to, self._page)
            for event in events:
                self._deliver(event)
            if len(events) < self._page:
                self.delivered_head = up_to
            else:
                self.delivered_head = events[-1].seq
