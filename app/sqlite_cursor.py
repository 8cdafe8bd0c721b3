"""One trip to aiosqlite's thread per SQLite statement.

aiosqlite runs each connection in a thread of its own, and every call to it is a trip
there and back through the event loop. SQLAlchemy's adapter makes three or four per
statement: open a cursor, execute, fetch the rows, close the cursor. On a busy loop
(fan-out to thousands of websockets, say) each trip waits its turn, and a report's
dozen statements made about 46 of them (docs/benchmarks.md). This cursor does all four
in one function run in the thread.

It is put in place per connection by ``install`` (from the engine's ``connect`` event),
not by changing SQLAlchemy's classes for everyone. It reads private attributes of
SQLAlchemy's adapter and of aiosqlite, which pyproject.toml pins to the minor versions
it was written against; tests/test_sqlite_cursor.py checks both the trips and the
results.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util import await_only as await_

_Outcome = tuple[Any, list[Any], int, Any]  # description, rows, rowcount, lastrowid


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In aiosqlite's thread: the whole statement, its rows read."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's buffered aiosqlite cursor, one thread trip per statement."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        # No driver cursor is opened here: that would be a trip of its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: Any = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None  # nothing is left open in the driver

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._statement(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._statement(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _statement(self, operation: str, parameters: Any, *, many: bool) -> None:
        driver = self._connection  # the aiosqlite connection
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await driver._execute(
                _run,
                driver._conn,
                operation,
                parameters,
                many,
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


def _run_many(connection: sqlite3.Connection, statements: list[tuple[str, list[Any]]]) -> None:
    """In aiosqlite's thread: each statement run for each of its parameter sets, in order."""
    cursor = connection.cursor()
    try:
        for operation, parameters in statements:
            try:
                cursor.executemany(operation, parameters)
            except sqlite3.Error as error:
                # As SQLAlchemy would raise it (the committer tells conflicts and an
                # unavailable store from these), naming the statement that failed.
                raise DBAPIError.instance(operation, None, error, sqlite3.Error) from error
    finally:
        cursor.close()


async def executemany_all(
    connection: AsyncConnection, statements: list[tuple[str, list[Any]]]
) -> bool:
    """Run several ``executemany`` statements in one trip to the connection's thread, in
    the connection's current transaction. False, having run nothing, if the connection
    is not one of ours."""
    raw = await connection.get_raw_connection()
    adapted = raw.dbapi_connection
    if not isinstance(adapted, OneTripConnection):
        return False
    driver = adapted._connection
    async with adapted._execute_mutex:
        await driver._execute(_run_many, driver._conn, statements)
    return True


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # server-side (streaming) cursors stay SQLAlchemy's


def install(dbapi_connection: Any) -> None:
    """Give one of our engine's new connections the one-trip cursor."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = OneTripConnection
