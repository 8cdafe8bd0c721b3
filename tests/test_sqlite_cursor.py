"""The one-trip aiosqlite cursor (app/sqlite_cursor.py): each statement is one call into
the connection's thread, and what SQLAlchemy reads back is what its own cursor gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import _sqlite_engine
from app.sqlite_cursor import OneTripConnection, executemany_all


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = _sqlite_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'cursor.db'}",
        begin="IMMEDIATE",
        busy_timeout_ms=1000,
        pool_size=1,
    )
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        )
    try:
        yield engine
    finally:
        await engine.dispose()


async def _trips(connection: AsyncConnection) -> list[Any]:
    """Record every call into the connection's aiosqlite thread from now on."""
    raw = await connection.get_raw_connection()
    adapted = raw.dbapi_connection
    assert type(adapted) is OneTripConnection
    driver = adapted._connection
    calls: list[Any] = []
    real = driver._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return await real(fn, *args, **kwargs)

    driver._execute = counted
    return calls


async def test_a_query_with_rows_is_one_trip(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"), [{"name": "a"}, {"name": "b"}]
        )
        calls = await _trips(connection)
        result = await connection.execute(text("SELECT id, name FROM item ORDER BY id"))
        assert len(calls) == 1
        assert list(result.keys()) == ["id", "name"]
        assert [tuple(row) for row in result] == [(1, "a"), (2, "b")]


async def test_rowcount_lastrowid_and_executemany(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        calls = await _trips(connection)
        many = await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"),
            [{"name": n} for n in ("x", "y", "z")],
        )
        assert many.rowcount == 3
        one = await connection.execute(text("INSERT INTO item (name) VALUES ('w')"))
        assert one.lastrowid == 4
        changed = await connection.execute(text("UPDATE item SET name = name || '!' WHERE id > 1"))
        assert changed.rowcount == 3
        assert len(calls) == 3
        returned = await connection.execute(
            text("INSERT INTO item (name) VALUES ('v') RETURNING id, name")
        )
        assert [tuple(row) for row in returned] == [(5, "v")]


async def test_driver_errors_are_sqlalchemy_errors_and_the_connection_goes_on(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO item (name) VALUES ('dup')"))
        with pytest.raises(IntegrityError):
            await connection.execute(text("INSERT INTO item (name) VALUES ('dup')"))
        with pytest.raises(OperationalError):
            await connection.execute(text("SELECT nope FROM item"))
        count = await connection.scalar(text("SELECT count(*) FROM item"))
    assert count == 1


async def test_streamed_results_still_use_a_server_side_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"),
            [{"name": f"n{i:04d}"} for i in range(1000)],
        )
        result = await connection.stream(text("SELECT name FROM item ORDER BY id"))
        names = [row.name async for row in result]
    assert names == [f"n{i:04d}" for i in range(1000)]


async def test_several_executemany_are_one_trip_in_the_transaction(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        calls = await _trips(connection)
        done = await executemany_all(
            connection,
            [
                ("INSERT INTO item (name) VALUES (?)", [("a",), ("b",)]),
                ("INSERT INTO item (name) VALUES (?)", [("c",)]),
            ],
        )
        assert done and len(calls) == 1
        await transaction.rollback()  # they were in the connection's transaction
        left = await connection.execute(text("SELECT count(*) FROM item"))
        assert left.scalar_one() == 0


async def test_a_failing_statement_is_a_sqlalchemy_error_naming_it(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.begin()
        with pytest.raises(IntegrityError) as raised:
            await executemany_all(
                connection,
                [
                    ("INSERT INTO item (name) VALUES (?)", [("a",)]),
                    ("INSERT INTO item (name) VALUES (?)", [("b",), ("a",)]),
                ],
            )
        assert "UNIQUE" in str(raised.value.orig)
        assert raised.value.statement == "INSERT INTO item (name) VALUES (?)"
        await connection.rollback()
        again = await connection.execute(text("SELECT count(*) FROM item"))
        assert again.scalar_one() == 0
