"""Engines, session factories and the SQLite pragmas that make commits durable.

SQLite gets two engines: reads run in autocommit (WAL readers never wait for the
writer, and skipping BEGIN/ROLLBACK saves two thread hops a request), writes begin
IMMEDIATE so concurrent writers queue on the busy timeout instead of failing with
"database is locked" half-way through. The committers of several server processes queue
on a file lock first (``WriterLock``), so that they take turns without the busy
handler's sleeps. PostgreSQL reads run in autocommit as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from app import sqlite_cursor
from app.config import Settings


def _sqlite_engine(
    url: str, *, begin: str | None, busy_timeout_ms: int, pool_size: int
) -> AsyncEngine:
    """``begin=None``: statements run in the driver's autocommit, each on the latest
    committed state, with no BEGIN or ROLLBACK around them (every one is a thread hop)."""
    # Every aiosqlite connection is a thread: keep enough of them open that concurrent
    # requests reuse connections instead of opening (and closing) new ones.
    options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size}
    if begin is None:
        options.update(isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        sqlite_cursor.install(dbapi_connection)  # one thread trip per statement
        # Let SQLAlchemy, not the driver, emit BEGIN; required for SAVEPOINT and IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if begin is not None:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(f"BEGIN {begin}")

    return engine


class WriterLock:
    """Puts the write transactions of every process on one SQLite store in a queue.

    SQLite lets one writer in at a time, and a writer that finds the database locked
    sleeps in its busy handler (1, 2, 5, 10 ... 100 ms) before it tries again: two server
    processes that take turns at the lock lose most of their time asleep. Instead each
    committer takes an exclusive ``flock`` on ``<database>-writer.lock`` around its
    transaction; a process that waits is woken by the kernel as soon as the other lets
    go. The lock is advisory: other writers (the CLI, migrations) still meet SQLite's own.

    A wait that times out (or is cancelled) leaves its file behind, to be closed, which lets
    go of the lock, once the waiting thread has it; the next batch opens the file anew, so
    that its lock is its own.
    """

    def __init__(self, path: str, *, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._fd: int | None = None

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fd = self._fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            await self._wait(fd)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    async def _wait(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[None] = loop.create_future()

        def wait() -> None:  # in a daemon thread: a process may exit while it waits
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as error:  # the file was closed under it
                loop.call_soon_threadsafe(_settle, got, error)
            else:
                loop.call_soon_threadsafe(_settle, got, None)

        threading.Thread(target=wait, name="writer-lock", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(got), self._timeout)
        except BaseException:
            self._fd = None  # the next batch opens the file anew
            got.add_done_callback(lambda _: os.close(fd))
            raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class Database:
    """The store: engines plus a read and a write session factory."""

    def __init__(self, settings: Settings) -> None:
        self.url = make_url(settings.database_url)
        self.writer_lock: WriterLock | None = None
        self.dialect = self.url.get_backend_name()
        timeout = settings.db_timeout
        if self.dialect == "sqlite":
            busy_ms = int(timeout * 1000)
            self.write_engine = _sqlite_engine(
                settings.database_url, begin="IMMEDIATE", busy_timeout_ms=busy_ms, pool_size=2
            )
            self.read_engine = _sqlite_engine(
                settings.database_url, begin=None, busy_timeout_ms=busy_ms, pool_size=32
            )
            database = self.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                # A quarter of the timeout: a batch that then meets SQLite's own lock
                # (another writer, such as the CLI) waits the busy timeout too; at the
                # default 4 s, both stay within API.md's 5 seconds to a 503.
                self.writer_lock = WriterLock(f"{database}-writer.lock", timeout=timeout / 4)
        else:
            common: dict[str, Any] = {
                "pool_size": 20,
                "max_overflow": 20,
                "pool_timeout": timeout,
                "connect_args": {"timeout": timeout, "command_timeout": timeout},
            }
            # No pre-ping either: it cost every batch a round trip. A batch whose first
            # statement finds its connection dead runs again on a new one (the committer).
            self.write_engine = create_async_engine(settings.database_url, **common)
            # Reads in autocommit and without a pre-ping: one round trip a statement instead
            # of four. A connection the server dropped fails once (503); SQLAlchemy then
            # discards the whole pool and the next request reconnects.
            self.read_engine = create_async_engine(
                settings.database_url,
                isolation_level="AUTOCOMMIT",
                pool_reset_on_return=None,
                **common,
            )
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self.write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def ping(self) -> None:
        """Raise if the store does not answer a trivial query."""
        async with self.read_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.writer_lock is not None:
            self.writer_lock.close()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
