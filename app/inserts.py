"""Bulk inserts of the committer's staged rows, below SQLAlchemy's per-row handling.

Rows staged for one table with the same keys form a ``Group``. PostgreSQL takes a whole
batch's groups as one statement (``together``), SQLite as one trip to the connection's
thread (``in_one_trip``), and either falls back to one ``executemany`` a group (``many``)
when a group leaves out a column whose default SQLAlchemy computes in Python. Every value
goes through its column type's bind processing, as SQLAlchemy's ``insert`` would do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from app import sqlite_cursor

# Plans are cached by shape; a batch's shape is the tables and keys it stages, a handful
# in practice. Past this many, plans are no longer kept.
MAX_PLANS = 512

Group = tuple[Table, tuple[str, ...], list[dict[str, Any]]]
"""Rows staged for one table, all with the same keys."""
Param = tuple[str, Callable[[Any], Any] | None]
"""A statement's parameter: the row's key, and its column type's bind processor."""


def _param(table: Table, key: str, dialect: Dialect) -> Param:
    return key, table.c[key].type.dialect_impl(dialect).bind_processor(dialect)


def _leaves_out_a_default(table: Table, keys: tuple[str, ...]) -> bool:
    """Whether a column that ``keys`` leave out has a default SQLAlchemy computes in Python
    (only SQLAlchemy's own insert applies it)."""
    return any(column.default is not None for column in table.columns if column.key not in keys)


async def many(
    connection: AsyncConnection, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows`` with one driver-level ``executemany``.

    The statement is compiled once per table, keys and dialect, and each value goes through
    its column type's bind processing, as SQLAlchemy's ``insert`` would do; what is left out
    is SQLAlchemy's handling of each row's parameters, about a tenth of a report's time.
    """
    plan = insert_plan(table, keys, connection.dialect)
    if plan is None:  # a column left out has a default computed in Python
        await connection.execute(insert(table), rows)
        return
    await connection.exec_driver_sql(plan.sql, _parameters(plan, rows))


def _parameters(plan: InsertPlan, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        tuple(row[name] if process is None else process(row[name]) for name, process in plan.params)
        for row in rows
    ]


async def in_one_trip(connection: AsyncConnection, groups: list[Group]) -> bool:
    """SQLite: every group's ``executemany`` in one trip to the connection's thread. False,
    having sent nothing, if a group cannot (a column left out has a default computed in
    Python)."""
    statements: list[tuple[str, list[Any]]] = []
    for table, keys, rows in groups:
        plan = insert_plan(table, keys, connection.dialect)
        if plan is None:
            return False
        statements.append((plan.sql, _parameters(plan, rows)))
    return await sqlite_cursor.executemany_all(connection, statements)


async def together(connection: AsyncConnection, groups: list[Group]) -> bool:
    """PostgreSQL: every group in one statement and one round trip. Each table's rows go in
    as one array per column (``INSERT ... SELECT * FROM unnest(...)``), the tables as
    data-modifying CTEs of one statement; foreign keys are checked at its end, so children
    may go in beside their parents. False, having sent nothing, if a group cannot (a
    column left out has a default computed in Python)."""
    shapes = tuple((table, keys) for table, keys, _ in groups)
    plan = together_plan(shapes, connection.dialect)
    if plan is None:
        return False
    arrays: list[list[Any]] = []
    for (_, _, rows), columns in zip(groups, plan.params, strict=True):
        for name, process in columns:
            if process is None:
                arrays.append([row[name] for row in rows])
            else:
                arrays.append([process(row[name]) for row in rows])
    await connection.exec_driver_sql(plan.sql, tuple(arrays))
    return True


@dataclass(frozen=True, slots=True)
class TogetherPlan:
    sql: str
    params: tuple[tuple[Param, ...], ...]  # per group


_TOGETHER: dict[tuple[tuple[tuple[Table, tuple[str, ...]], ...], str], TogetherPlan] = {}


def together_plan(
    shapes: tuple[tuple[Table, tuple[str, ...]], ...], dialect: Dialect
) -> TogetherPlan | None:
    index = (shapes, dialect.name)
    if index in _TOGETHER:
        return _TOGETHER[index]
    quote = dialect.identifier_preparer
    inserts: list[str] = []
    params: list[tuple[Param, ...]] = []
    number = 0
    for table, keys in shapes:
        if _leaves_out_a_default(table, keys):
            return None
        casts = []
        for key in keys:
            number += 1
            casts.append(f"${number}::{table.c[key].type.compile(dialect=dialect)}[]")
        names = ", ".join(quote.quote(table.c[key].name) for key in keys)
        # Names from the model's metadata, quoted by the dialect; values are bound.
        inserts.append(
            f"INSERT INTO {quote.format_table(table)} ({names}) "  # noqa: S608
            f"SELECT * FROM unnest({', '.join(casts)})"
        )
        params.append(tuple(_param(table, key, dialect) for key in keys))
    *first, last = inserts
    ctes = ", ".join(f"staged_{n} AS ({statement})" for n, statement in enumerate(first))
    plan = TogetherPlan(f"WITH {ctes} {last}" if first else last, tuple(params))
    if len(_TOGETHER) < MAX_PLANS:
        _TOGETHER[index] = plan
    return plan


@dataclass(frozen=True, slots=True)
class InsertPlan:
    sql: str
    params: tuple[Param, ...]  # in placeholder order


_PLANS: dict[tuple[Table, tuple[str, ...], str], InsertPlan | None] = {}


def insert_plan(table: Table, keys: tuple[str, ...], dialect: Dialect) -> InsertPlan | None:
    """The positional INSERT of ``keys`` into ``table``; None when a column left out has a
    default that SQLAlchemy computes in Python (then its own path applies it)."""
    index = (table, keys, dialect.name)
    if index in _PLANS:
        return _PLANS[index]
    plan = None
    if not _leaves_out_a_default(table, keys):
        compiled = insert(table).inline().compile(dialect=dialect, column_keys=list(keys))
        assert compiled.positional and compiled.positiontup is not None
        plan = InsertPlan(
            str(compiled), tuple(_param(table, name, dialect) for name in compiled.positiontup)
        )
    if len(_PLANS) < MAX_PLANS:
        _PLANS[index] = plan
    return plan
