"""The committer's bulk insert: staged rows go to the store through one driver-level
``executemany`` per table, with each column's own bind processing, or through SQLAlchemy
when a column left out has a default computed in Python."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.committer import WriteTx
from app.deps import Runtime
from app.inserts import insert_plan, together_plan
from app.models import AuditRecord
from app.models.base import utcnow
from app.services.audit import AUDIT
from tests.conftest import reset

SEOUL = timezone(timedelta(hours=9))


@pytest.fixture
async def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    await reset(runtime)
    return runtime


async def stored(runtime: Runtime) -> list[AuditRecord]:
    async with runtime.db.read_sessions() as session:
        found = await session.execute(
            select(AuditRecord).where(AuditRecord.action.like("test.%")).order_by(AuditRecord.id)
        )
        return list(found.scalars())


async def test_staged_rows_read_back_as_given(runtime: Runtime) -> None:
    at = datetime(2020, 6, 17, 9, 30, 15, 123456, tzinfo=SEOUL)

    async def job(tx: WriteTx) -> None:
        for n in range(3):
            tx.stage(
                AUDIT,  # type: ignore[arg-type]
                {
                    "at": at + timedelta(minutes=n),
                    "key_id": None,
                    "administration": "KR-KCS",
                    "action": f"test.{n}",
                    "operation": None,
                    "alert_ids": '["01J"]',
                    "query": None,
                },
            )

    await runtime.committer.run(job, staging_only=True)

    records = await stored(runtime)
    assert [r.action for r in records] == ["test.0", "test.1", "test.2"]
    # Converted to UTC on the way in (the column's bind processing), aware on the way out.
    assert [r.at for r in records] == [
        (at + timedelta(minutes=n)).astimezone(UTC) for n in range(3)
    ]
    assert {(r.administration, r.alert_ids, r.query) for r in records} == {
        ("KR-KCS", '["01J"]', None)
    }


async def test_a_row_leaving_out_a_python_default_gets_it(runtime: Runtime) -> None:
    before = utcnow()

    async def job(tx: WriteTx) -> None:
        tx.stage(AUDIT, {"action": "test.default", "administration": "KR-KCS"})  # type: ignore[arg-type]

    await runtime.committer.run(job, staging_only=True)

    (record,) = await stored(runtime)
    assert record.at is not None and before <= record.at <= utcnow()


async def test_a_naive_datetime_is_refused_not_stored(runtime: Runtime) -> None:
    async def job(tx: WriteTx) -> None:
        tx.stage(AUDIT, {"at": datetime(2020, 6, 17, 9, 30), "action": "test.naive"})  # type: ignore[arg-type]

    with pytest.raises(Exception, match="naive datetime"):
        await runtime.committer.run(job, staging_only=True)
    assert await stored(runtime) == []


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_plans_are_plain_inserts_in_placeholder_order(dialect_name: str) -> None:
    from sqlalchemy.dialects.postgresql import asyncpg
    from sqlalchemy.dialects.sqlite import aiosqlite

    dialect = aiosqlite.dialect() if dialect_name == "sqlite" else asyncpg.dialect()
    keys = ("query", "action", "at")
    plan = insert_plan(AUDIT, keys, dialect)  # type: ignore[arg-type]

    assert plan is not None
    assert "RETURNING" not in plan.sql.upper()
    assert sorted(name for name, _ in plan.params) == sorted(keys)
    columns = plan.sql.split("(", 1)[1].split(")", 1)[0]
    # The values follow the statement's columns.
    assert [c.strip().strip('"') for c in columns.split(",")] == [n for n, _ in plan.params]
    assert insert_plan(AUDIT, ("action",), dialect) is None  # `at` has a Python default


def test_postgres_inserts_every_table_in_one_statement_parents_first() -> None:
    from sqlalchemy.dialects.postgresql import asyncpg

    from app.models import AlertItem, Event

    dialect = asyncpg.dialect()
    item, event = AlertItem.__table__, Event.__table__
    shapes = (
        (item, ("alert_id", "commodity")),
        (event, ("seq", "type", "operation_id", "alert_id", "at", "payload")),
        (AUDIT, ("at", "action")),
    )
    plan = together_plan(shapes, dialect)  # type: ignore[arg-type]

    assert plan is not None
    assert plan.sql.startswith("WITH staged_0 AS (INSERT INTO alert_item (alert_id, commodity) ")
    assert plan.sql.count("INSERT INTO") == 3 and plan.sql.index("alert_item") < plan.sql.index(
        "INSERT INTO event"
    )
    assert "unnest($1::VARCHAR(26)[], $2::VARCHAR(32)[])" in plan.sql
    assert plan.sql.endswith(
        "SELECT * FROM unnest($9::TIMESTAMP WITH TIME ZONE[], $10::VARCHAR(32)[])"
    )
    assert [len(columns) for columns in plan.params] == [2, 6, 2]
    # A table whose rows leave out a column with a Python default: not in one statement.
    assert together_plan(((item, ("alert_id", "commodity")), (AUDIT, ("action",))), dialect) is None  # type: ignore[arg-type]
