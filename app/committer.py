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

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import AppError, Conflict, ServiceUnavailable, is_unavailable
from app.models import Base, Event, EventCounter
from app.realtime.events import AlertFacts, Batch, LiveEvent

log = logging.getLogger("relay.committer")

T = TypeVar("T")


InsertHook = Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]


@dataclass(slots=True)
class WriteTx:
    """What a job may use: the session, ``seq`` numbers, rows to insert, events to publish.

    ``stage`` collects rows that are inserted together, one statement per table, when
    the batch ends (or before the next job that works through the session), which is
    what lets a batch of reports cost a handful of statements instead of a dozen each.
    ``memo`` keeps lookups for the rest of the batch; it is cleared whenever a job may
    have changed what it holds.
    """

    session: AsyncSession
    last_seq: int
    events: list[LiveEvent] = field(default_factory=list)
    staged: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    memo: dict[Any, Any] = field(default_factory=dict)
    # Run after each bulk insert of a table's staged rows, in the same transaction: what
    # is derived from them (the statistics from new alerts) is written with them.
    after_insert: dict[Table, InsertHook] = field(default_factory=dict)

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def stage(self, table: Table, row: dict[str, Any]) -> None:
        self.staged.append((table, row))

    def add_event(self, event: Event, facts: AlertFacts) -> None:
        self.stage(
            Event.__table__,  # type: ignore[arg-type]
            {
                "seq": event.seq,
                "type": event.type,
                "operation_id": event.operation_id,
                "alert_id": event.alert_id,
                "at": event.at,
                "payload": event.payload,
            },
        )
        self.events.append(LiveEvent(event.seq, event.type, facts, event.payload))

    async def flush_staged(self) -> None:
        """Insert what is staged, parents before children."""
        if not self.staged:
            return
        by_table: dict[Table, list[dict[str, Any]]] = {}
        for table, row in self.staged:
            by_table.setdefault(table, []).append(row)
        self.staged.clear()
        for table in _INSERT_ORDER:
            rows = by_table.get(table)
            if rows:
                await self.session.execute(insert(table), rows)
        for table, hook in self.after_insert.items():
            inserted = by_table.get(table)
            if inserted:
                await hook(self.session, inserted)


Job = Callable[[WriteTx], Awaitable[T]]

_INSERT_ORDER: list[Table] = list(Base.metadata.sorted_tables)


@dataclass(slots=True)
class _Pending(Generic[T]):
    job: Job[T]
    future: asyncio.Future[T]
    staging_only: bool
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
        observe_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._lock_counter_row = lock_counter_row
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._observe_batch = observe_batch
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

    async def run(self, job: Job[T], *, staging_only: bool = False) -> T:
        """Run ``job`` in the next batch; return its result once the batch is committed.

        A ``staging_only`` job promises to write nothing through the session (it reads, and
        stages rows): it then runs without a savepoint of its own.
        """
        if self._task is None:
            raise ServiceUnavailable("The server is not accepting writes")
        pending: _Pending[T] = _Pending(
            job, asyncio.get_running_loop().create_future(), staging_only
        )
        # A caller that goes away must not leave an unretrieved exception behind.
        pending.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.put_nowait(pending)
        return await asyncio.shield(pending.future)

    async def _run_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if self._observe_batch is not None:
                self._observe_batch(len(batch))
            committed: Batch | None = None
            try:
                committed = await self._commit(batch)
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
            # Callers hear back first; publishing (and the fan-out it starts) comes after.
            # Their tasks resume two turns of the loop from now (the result passes through
            # `asyncio.shield`): publishing waits for them, so a report's 201 is written
            # before its fan-out takes the loop. The next batch waits for this one's
            # publishing, so events are still published in seq order.
            if committed is not None:
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                self._publish(committed)

    async def _commit(self, jobs: list[_Pending[Any]]) -> Batch:
        async with self._sessions() as session, session.begin():
            counter = select(EventCounter.last_seq).where(EventCounter.id == 1)
            if self._lock_counter_row:
                counter = counter.with_for_update()
            start = (await session.execute(counter)).scalar_one()
            tx = WriteTx(session, start)
            for pending in jobs:
                events_mark, staged_mark = len(tx.events), len(tx.staged)
                if not pending.staging_only:
                    # It may read what earlier jobs staged, and change what is memoised.
                    # (A failure here is the batch's, not this job's: it propagates.)
                    await tx.flush_staged()
                    tx.memo.clear()
                try:
                    if pending.staging_only:
                        pending.result = await pending.job(tx)
                    else:
                        async with session.begin_nested():
                            pending.result = await pending.job(tx)
                except Exception as exc:
                    if is_unavailable(exc):
                        raise
                    if not isinstance(exc, AppError | IntegrityError):
                        log.exception("write job failed")
                    del tx.events[events_mark:]
                    del tx.staged[staged_mark:]
                    pending.error = (
                        Conflict("The write conflicts with stored data")
                        if isinstance(exc, IntegrityError)
                        else exc
                    )
            await tx.flush_staged()
            if tx.last_seq != start:
                await session.execute(
                    update(EventCounter).where(EventCounter.id == 1).values(last_seq=tx.last_seq)
                )
        return Batch(start, tx.last_seq, tuple(tx.events), committed_at=time.time())

    def _publish(self, committed: Batch) -> None:
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
