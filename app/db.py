"""Engines, session factories and the SQLite pragmas that make commits durable.

SQLite gets two engines: reads run in autocommit (WAL readers never wait for the
writer, and skipping BEGIN/ROLLBACK saves two thread hops a request), writes begin
IMMEDIATE so concurrent writers queue on the busy timeout instead of failing with
"database is locked" half-way through. PostgreSQL reads run in autocommit as well.
"""

from __future__ import annotations

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


class Database:
    """The store: engines plus a read and a write session factory."""

    def __init__(self, settings: Settings) -> None:
        self.url = make_url(settings.database_url)
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
        else:
            common: dict[str, Any] = {
                "pool_size": 20,
                "max_overflow": 20,
                "pool_timeout": timeout,
                "connect_args": {"timeout": timeout, "command_timeout": timeout},
            }
            self.write_engine = create_async_engine(
                settings.database_url, pool_pre_ping=True, **common
            )
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
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
