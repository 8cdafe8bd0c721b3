"""Filling a migrated store with ``bench.traffic``'s alerts by bulk insert: Core
``executemany`` on SQLite (its FTS5 triggers fill ``alert_fts`` as they do for the app),
``COPY`` on PostgreSQL; then the statistics are added up into ``stat_rollup`` by the
statement that keeps them in the app. Seeding a million alerts takes minutes."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Table, create_engine, event, insert, select, update
from sqlalchemy.ext.asyncio import create_async_engine
from ulid import ULID

from app.models import Administration, ApiKey, EventCounter, Operation, Participation
from app.services import rollup
from app.services.keys import hash_token
from app.simulator import OCU
from bench import traffic
from bench.rows import Generator, timeline

ANALYSTS = (OCU[0], "KR-KCS")  # the coordinator and a participant


@dataclass(slots=True)
class Seeded:
    """What the benchmark needs to know about the seeded store."""

    alerts: int
    events: int
    seconds: float
    analyst_tokens: dict[str, str]  # administration code -> analyst token
    identifiers: list[str]  # a sample of ICE BREAK II identifier values
    documents_checked: int


def key_row(administration_id: int, *, role: str, label: str, token: str) -> dict[str, Any]:
    return {
        "id": str(ULID()),
        "token_hash": hash_token(token),
        "role": role,
        "administration_id": administration_id,
        "label": label,
        "created_at": traffic.KEYS_CREATED,
        "expires_at": None,
        "revoked_at": None,
    }


def key_rows(ids: dict[str, int], tokens: dict[str, str]) -> tuple[dict[str, Any], list[Any]]:
    """A member key per administration (its label is ``reported_by_key``) and the analysts'."""
    members = {
        code: key_row(id_, role="member", label=f"{code} system", token=secrets.token_urlsafe())
        for code, id_ in ids.items()
    }
    analysts = [
        key_row(ids[code], role="analyst", label=f"{code} analyst", token=token)
        for code, token in tokens.items()
    ]
    return members, analysts


class Progress:
    def __init__(self, count: int, report: Callable[[str], None]) -> None:
        self.count, self.report, self.began = count, report, time.perf_counter()

    def __call__(self, done: int) -> None:
        elapsed = time.perf_counter() - self.began
        rate = done / elapsed if elapsed else 0.0
        eta = (self.count - done) / rate if rate else 0.0
        self.report(f"  {done:>9,} / {self.count:,} alerts  {rate:,.0f}/s  eta {eta:,.0f} s")


def seed_sqlite(
    url: str,
    count: int,
    *,
    seed: int = 2020,
    chunk: int = 20_000,
    report: Callable[[str], None] = print,
) -> Seeded:
    """Fill a migrated SQLite store (``sqlite+aiosqlite:///...``) through a sync engine."""
    began = time.perf_counter()
    rng = random.Random(seed)
    engine = create_engine(url.replace("+aiosqlite", ""))

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        # A bulk load: no fsync until the end, a large page cache.
        cursor = connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-1000000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    tokens = {code: "sr_" + secrets.token_urlsafe(32) for code in ANALYSTS}
    with engine.begin() as connection:
        connection.execute(insert(_table(Administration)), traffic.administrations())
        ids = dict(
            connection.execute(select(Administration.code, Administration.id)).tuples().all()
        )
        members, analysts = key_rows(ids, tokens)
        connection.execute(insert(_table(ApiKey)), [*members.values(), *analysts])
        ops = traffic.operations(ids, members)
        for op in ops:
            inserted = insert(_table(Operation)).returning(Operation.id)
            op.id = connection.execute(inserted, traffic.operation_row(op)).scalar_one()
            connection.execute(insert(_table(Participation)), traffic.participation_rows(op))
    line = timeline(rng, count)
    progress = Progress(count, report)
    generator = Generator(rng, ops)
    for done, rows in generator.chunks(line, chunk):
        with engine.begin() as connection:
            for table, batch in rows.tables.items():
                if batch:
                    connection.execute(insert(table), batch)
        progress(done)
    with engine.begin() as connection:
        connection.execute(
            update(EventCounter).where(EventCounter.id == 1).values(last_seq=line.last_seq)
        )
        report("  adding up the statistics (stat_rollup)")
        rollup.rebuild(connection)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return Seeded(
        count,
        line.last_seq,
        time.perf_counter() - began,
        tokens,
        generator.identifiers,
        generator.checked,
    )


def seed_postgres(
    url: str,
    count: int,
    *,
    seed: int = 2020,
    chunk: int = 20_000,
    report: Callable[[str], None] = print,
) -> Seeded:
    """Fill a migrated PostgreSQL store (``postgresql+asyncpg://...``) with COPY, then
    VACUUM ANALYZE as autovacuum would after such a load."""
    return asyncio.run(_seed_postgres(url, count, seed=seed, chunk=chunk, report=report))


async def _seed_postgres(
    url: str, count: int, *, seed: int, chunk: int, report: Callable[[str], None]
) -> Seeded:
    began = time.perf_counter()
    rng = random.Random(seed)
    tokens = {code: "sr_" + secrets.token_urlsafe(32) for code in ANALYSTS}
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        ids: dict[str, int] = {}
        for row in traffic.administrations():
            ids[row["code"]] = await _insert_returning_id(connection, "administration", row)
        members, analysts = key_rows(ids, tokens)
        await _copy(connection, _table(ApiKey), [*members.values(), *analysts])
        ops = traffic.operations(ids, members)
        for op in ops:
            op.id = await _insert_returning_id(connection, "operation", traffic.operation_row(op))
            await _copy(connection, _table(Participation), traffic.participation_rows(op))
        line = timeline(rng, count)
        progress = Progress(count, report)
        generator = Generator(rng, ops)
        for done, rows in generator.chunks(line, chunk):
            async with connection.transaction():
                for table, batch in rows.tables.items():
                    await _copy(connection, table, batch)
            progress(done)
        await connection.execute(
            "UPDATE event_counter SET last_seq = $1 WHERE id = 1", line.last_seq
        )
        report("  adding up the statistics (stat_rollup)")
        engine = create_async_engine(url)
        try:
            async with engine.begin() as sqlalchemy_connection:
                await rollup.rebuild_async(sqlalchemy_connection)
        finally:
            await engine.dispose()
        report("  VACUUM ANALYZE")
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return Seeded(
        count,
        line.last_seq,
        time.perf_counter() - began,
        tokens,
        generator.identifiers,
        generator.checked,
    )


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def _insert_returning_id(
    connection: asyncpg.Connection, table: str, row: dict[str, Any]
) -> int:
    columns = ", ".join(row)
    values = ", ".join(f"${n}" for n in range(1, len(row) + 1))
    statement = f"INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING id"
    return int(await connection.fetchval(statement, *row.values()))


async def _copy(connection: asyncpg.Connection, table: Table, batch: list[dict[str, Any]]) -> None:
    if not batch:
        return
    columns = list(batch[0])
    records = [tuple(row[c] for c in columns) for row in batch]
    await connection.copy_records_to_table(table.name, records=records, columns=columns)
