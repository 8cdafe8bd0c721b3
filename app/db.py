"""Engines, session factories and the SQLite pragmas that make commits durable.

SQLite gets two engines: reads begin DEFERRED so they never wait for the writer,
writes begin IMMEDIATE so concurrent writers queue on the busy timeout instead of
failing with "database is locked" half-way through. PostgreSQL needs only one.
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

from app.config import Settings


def _sqlite_engine(url: str, *, begin: str, busy_timeout_ms: int, pool_size: int) -> AsyncEngine:
    # Every aiosqlite connection is a thread: keep enough of them open that concurrent
    # requests reuse connections instead of opening (and closing) new ones.
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN; required for SAVEPOINT and IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

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
                settings.database_url, begin="DEFERRED", busy_timeout_ms=busy_ms, pool_size=32
            )
        else:
            self.write_engine = create_async_engine(
                settings.database_url,
                pool_pre_ping=True,
                pool_size=20,
                max_overflow=20,
                pool_timeout=timeout,
                connect_args={"timeout": timeout, "command_timeout": timeout},
            )
            self.read_engine = self.write_engine
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
