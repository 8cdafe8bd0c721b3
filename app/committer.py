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

A job run ``under_key`` runs only if that API key is live (neither revoked nor expired) in
the batch's transaction: a write made by a caller known from memory (``KeyCache``) is
refused at commit once its key is revoked on any node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import inserts
from app.db import WriterLock
from app.errors import AppError, Conflict, ServiceUnavailable, Unauthorized, is_unavailable
from app.models import ApiKey, Base, Event, EventCounter
from app.models.base import utcnow
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

    def add_event(self, row: dict[str, Any], facts: AlertFacts) -> None:
        """Stage an event's row (the ``event`` table's columns) and publish it once committed."""
        self.stage(EVENT, row)
        self.events.append(LiveEvent(row["seq"], row["type"], facts, row["payload"]))

    async def flush_staged(self) -> None:
        """Insert what is staged, parents before children."""
        if not self.staged:
            return
        by_table: dict[Table, list[dict[str, Any]]] = {}
        for table, row in self.staged:
            by_table.setdefault(table, []).append(row)
        self.staged.clear()
        groups: list[inserts.Group] = []
        for table in _INSERT_ORDER:
            by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in by_table.get(table, ()):
                by_keys.setdefault(tuple(row), []).append(row)
            groups += [(table, keys, rows) for keys, rows in by_keys.items()]
        connection = await self.session.connection()
        if connection.dialect.name == "postgresql":
            done = await inserts.together(connection, groups)
        else:
            done = await inserts.in_one_trip(connection, groups)
        if not done:
            for group in groups:
                await inserts.many(connection, *group)
        for table, hook in self.after_insert.items():
            inserted = by_table.get(table)
            if inserted:
                await hook(self.session, inserted)


Job = Callable[[WriteTx], Awaitable[T]]

EVENT: Table = Event.__table__  # type: ignore[assignment]
# Built once: every batch reads, and most batches move, the counter.
COUNTER = select(EventCounter.last_seq).where(EventCounter.id == 1)
LOCKED_COUNTER = COUNTER.with_for_update()
MOVE_COUNTER = (
    update(EventCounter).where(EventCounter.id == 1).values(last_seq=bindparam("last_seq"))
)


_INSERT_ORDER: list[Table] = list(Base.metadata.sorted_tables)


REVOKED = "This API key is expired or revoked"


LIVE_KEYS = select(ApiKey.id).where(
    ApiKey.id.in_(bindparam("wanted", expanding=True)),
    ApiKey.revoked_at.is_(None),
    or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > bindparam("now")),
)


async def _live_keys(session: AsyncSession, jobs: list[_Pending[Any]]) -> set[str]:
    """The keys of ``jobs`` that are neither revoked nor expired now, read in the batch's
    transaction: one statement for the rest of the batch."""
    wanted = sorted({pending.under_key for pending in jobs if pending.under_key is not None})
    found = await session.execute(LIVE_KEYS, {"wanted": wanted, "now": utcnow()})
    return set(found.scalars())


class _StaleConnection(ConnectionError):
    """The connection a batch was given was found dead before the batch wrote anything.
    (Found again on the retry, it is the store's unavailability: 503, as ``is_unavailable``
    tells a ``ConnectionError``.)"""


@dataclass(slots=True)
class _Pending(Generic[T]):
    job: Job[T]
    future: asyncio.Future[T]
    staging_only: bool
    under_key: str | None = None
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
        writer_lock: WriterLock | None = None,
    ) -> None:
        self._sessions = sessions
        self._writer_lock = writer_lock
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

    async def run(
        self, job: Job[T], *, staging_only: bool = False, under_key: str | None = None
    ) -> T:
        """Run ``job`` in the next batch; return its result once the batch is committed.

        A ``staging_only`` job promises to write nothing through the session (it reads, and
        stages rows): it then runs without a savepoint of its own. A job ``under_key`` fails
        with 401, unrun, if that API key is revoked or expired when its turn comes.
        """
        if self._task is None:
            raise ServiceUnavailable("The server is not accepting writes")
        pending: _Pending[T] = _Pending(
            job, asyncio.get_running_loop().create_future(), staging_only, under_key
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
        try:
            return await self._commit_once(jobs)
        except _StaleConnection:
            # Nothing was written: the batch's first statement found the connection dead
            # (the store restarted since it was pooled). SQLAlchemy has dropped the pool's
            # connections; run the batch again on a fresh one.
            return await self._commit_once(jobs)

    async def _commit_once(self, jobs: list[_Pending[Any]]) -> Batch:
        async with (
            self._writer_lock.held() if self._writer_lock else contextlib.nullcontext(),
            self._sessions() as session,
            session.begin(),
        ):
            counter = LOCKED_COUNTER if self._lock_counter_row else COUNTER
            try:
                start = (await session.execute(counter)).scalar_one()
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise _StaleConnection from exc
                raise
            tx = WriteTx(session, start)
            live: set[str] | None = None  # keys known live, until a job may have revoked one
            for index, pending in enumerate(jobs):
                if pending.under_key is not None:
                    if live is None:
                        live = await _live_keys(session, jobs[index:])
                    if pending.under_key not in live:
                        pending.error = Unauthorized(REVOKED)
                        continue
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
                        live = None
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
                await session.execute(MOVE_COUNTER, {"last_seq": tx.last_seq})
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
