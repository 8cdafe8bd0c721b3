"""Group commit: the one path by which anything is written.

Requests hand a *job* (a coroutine over a ``WriteTx``) to the committer and await
its result. One task per process takes every job that is waiting, runs each in a
savepoint of a single transaction, and commits once; a job's caller hears back
only after that commit, so a 201 still means "durably committed", while a batch of
concurrent requests shares one fsync.

Ordering of ``seq``: the transaction first locks the single ``event_counter`` row
(SQLite's BEGIN IMMEDIATE already holds the database write lock; PostgreSQL takes
the row with FOR UPDATE). Every ``seq`` is drawn while holding that lock and the
lock is released by the commit, so events commit in ``seq`` order on every process
and node: a reader that has seen N can never later find an event below N.
See docs/event-log.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import AppError, Conflict, ServiceUnavailable, is_unavailable
from app.models import Event, EventCounter
from app.realtime.events import AlertFacts, Batch, LiveEvent

log = logging.getLogger("relay.committer")

T = TypeVar("T")


@dataclass(slots=True)
class WriteTx:
    """What a job may use: the session, ``seq`` numbers, and events to publish after commit."""

    session: AsyncSession
    last_seq: int
    events: list[LiveEvent] = field(default_factory=list)

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def add_event(self, event: Event, facts: AlertFacts) -> None:
        self.session.add(event)
        self.events.append(LiveEvent(event.seq, event.type, facts, event.payload))


Job = Callable[[WriteTx], Awaitable[T]]


@dataclass(slots=True)
class _Pending(Generic[T]):
    job: Job[T]
    future: asyncio.Future[T]
    result: Any = None
    error: BaseException | None = None


class Committer:
    """Runs write jobs in batches, one transaction and one commit per batch."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        lock_counter_row: bool,
        max_batch: int = 256,
        on_commit: Callable[[Batch], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._lock_counter_row = lock_counter_row
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._queue: asyncio.Queue[_Pending[Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="committer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def run(self, job: Job[T]) -> T:
        """Run ``job`` in the next batch; return its result once the batch is committed."""
        if self._task is None:
            raise ServiceUnavailable("The server is not accepting writes")
        pending: _Pending[T] = _Pending(job, asyncio.get_running_loop().create_future())
        # A caller that goes away must not leave an unretrieved exception behind.
        pending.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.put_nowait(pending)
        return await asyncio.shield(pending.future)

    async def _run_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception as exc:  # the store failed: every job still open hears it
                unavailable = is_unavailable(exc)
                if not unavailable:
                    log.exception("write batch failed")
                for pending in batch:
                    if pending.error is None:
                        pending.error = ServiceUnavailable() if unavailable else exc
            finally:
                for pending in batch:
                    self._settle(pending)
                    self._queue.task_done()

    async def _commit(self, jobs: list[_Pending[Any]]) -> None:
        async with self._sessions() as session, session.begin():
            counter = select(EventCounter.last_seq).where(EventCounter.id == 1)
            if self._lock_counter_row:
                counter = counter.with_for_update()
            start = (await session.execute(counter)).scalar_one()
            tx = WriteTx(session, start)
            for pending in jobs:
                mark = len(tx.events)
                try:
                    async with session.begin_nested():
                        pending.result = await pending.job(tx)
                except (AppError, IntegrityError) as exc:
                    del tx.events[mark:]
                    pending.error = (
                        Conflict("The write conflicts with stored data")
                        if isinstance(exc, IntegrityError)
                        else exc
                    )
                except Exception as exc:
                    if is_unavailable(exc):
                        raise
                    log.exception("write job failed")
                    del tx.events[mark:]
                    pending.error = exc
            if tx.last_seq != start:
                await session.execute(
                    update(EventCounter).where(EventCounter.id == 1).values(last_seq=tx.last_seq)
                )
        committed = Batch(start, tx.last_seq, tuple(tx.events), committed_at=time.time())
        if committed.last > committed.after and self._on_commit is not None:
            try:
                self._on_commit(committed)
            except Exception:
                log.exception("publishing committed events failed")

    @staticmethod
    def _settle(pending: _Pending[Any]) -> None:
        if pending.future.done():
            return
        if pending.error is not None:
            pending.future.set_exception(pending.error)
        else:
            pending.future.set_result(pending.result)
