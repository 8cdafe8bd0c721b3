"""Keeping ``stat_rollup`` equal to the figures of the open alerts (API.md section 6).

Statistics over a million alerts cannot be counted at read time within half a second, so
every change adds its alerts' contribution to ``stat_rollup`` in its own transaction: a
batch of new alerts once it is inserted, an amendment or withdrawal by retracting the
alert's figures before the change and adding them again after. One SQL statement states
what an alert contributes, and the same statement rebuilds the whole table from scratch
(migration 0003, the benchmark's bulk seeding, ``relay rollup``), so the two cannot
disagree about what an alert contributes.

Each alert contributes, per dimension, one row per group it falls in (an alert with two
commodities falls in two), once for itself (``viewer_id`` 0) and once more for each
recipient of a restricted alert. ``Reach.rollup_clause`` picks the rows an administration
may count. Dimensions: ``total`` (one group; ``by=reported_by`` reads it by reporter),
``commodity``, ``transport_mode``, ``territory``, ``origin``, ``concealment_method``,
``detection_method``, ``route`` and ``day`` (``by=week`` adds up days into ISO weeks).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import TextClause, delete, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db import Database
from app.models import EventCounter, StatRollup

DIMENSIONS = (
    "total",
    "commodity",
    "transport_mode",
    "territory",
    "origin",
    "concealment_method",
    "detection_method",
    "route",
    "day",
)

_DAY = {
    "sqlite": "date(occurred_at)",
    "postgresql": "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}

_AMOUNTS = """
    sum(CASE i.unit WHEN 'kg' THEN i.quantity WHEN 'g' THEN i.quantity * 0.001 ELSE 0 END)
      AS mass_kg,
    sum(CASE i.unit WHEN 'l' THEN i.quantity WHEN 'ml' THEN i.quantity * 0.001 ELSE 0 END)
      AS volume_l,
    sum(CASE i.unit WHEN 'tablets' THEN i.quantity ELSE 0 END) AS tablets,
    sum(CASE i.unit WHEN 'pieces' THEN i.quantity ELSE 0 END) AS pieces"""

_FIGURES = "w.mass_kg, w.volume_l, w.tablets, w.pieces"

# (dimension, key expression) of the dimensions that are a field of the alert itself.
_FIELDS = (
    ("total", "''"),
    ("transport_mode", "coalesce(s.transport_mode, '')"),
    ("territory", "s.territory"),
    ("origin", "coalesce(s.origin, '')"),
    ("detection_method", "coalesce(s.detection_method, '')"),
    (
        "route",
        "CASE WHEN s.origin IS NULL OR s.destination IS NULL THEN '' "
        "ELSE s.origin || '-' || s.destination END",
    ),
    ("day", "s.day"),
)


def _statement(dialect: str, where: str, sign: int) -> str:
    """Add ``sign`` (1 or -1) times the contribution of the open alerts that ``where`` selects."""
    by_field = "\n      UNION ALL\n".join(
        f"SELECT s.id AS alert_id, s.operation_id, '{dimension}' AS dimension, {key} AS key, "  # noqa: S608
        f"s.reporter_id, s.scope, s.seizure, {_FIGURES} "
        "FROM scoped s LEFT JOIN whole w ON w.alert_id = s.id"
        for dimension, key in _FIELDS
    )
    # Every fragment is a constant of this module; values travel as bound parameters.
    return f"""
WITH scoped AS (
  SELECT id, operation_id, reporter_id, audience_scope AS scope,
         CASE WHEN kind = 'seizure' THEN 1 ELSE 0 END AS seizure,
         transport_mode, territory, origin, destination, detection_method,
         {_DAY[dialect]} AS day
  FROM alert WHERE status = 'open' AND ({where})
),
viewers AS (
  SELECT id AS alert_id, 0 AS viewer_id FROM scoped
  UNION ALL
  SELECT r.alert_id, r.administration_id FROM alert_recipient r
  JOIN scoped s ON s.id = r.alert_id WHERE s.scope = 'restricted'
),
amounts AS (
  SELECT i.alert_id, i.commodity, {_AMOUNTS}
  FROM alert_item i JOIN scoped s ON s.id = i.alert_id WHERE s.seizure = 1
  GROUP BY i.alert_id, i.commodity
),
whole AS (
  SELECT alert_id, sum(mass_kg) AS mass_kg, sum(volume_l) AS volume_l,
         sum(tablets) AS tablets, sum(pieces) AS pieces
  FROM amounts GROUP BY alert_id
),
commodities AS (
  SELECT DISTINCT i.alert_id, i.commodity FROM alert_item i JOIN scoped s ON s.id = i.alert_id
),
contributions AS (
      {by_field}
      UNION ALL
  SELECT s.id, s.operation_id, 'commodity', coalesce(c.commodity, ''), s.reporter_id, s.scope,
         s.seizure, w.mass_kg, w.volume_l, w.tablets, w.pieces
  FROM scoped s LEFT JOIN commodities c ON c.alert_id = s.id
  LEFT JOIN amounts w ON w.alert_id = c.alert_id AND w.commodity = c.commodity
      UNION ALL
  SELECT s.id, s.operation_id, 'concealment_method', coalesce(m.method, ''), s.reporter_id,
         s.scope, s.seizure, {_FIGURES}
  FROM scoped s LEFT JOIN alert_concealment m ON m.alert_id = s.id
  LEFT JOIN whole w ON w.alert_id = s.id
)
INSERT INTO stat_rollup (operation_id, dimension, viewer_id, scope, reporter_id, key,
                         alerts, seizures, mass_kg, volume_l, tablets, pieces)
SELECT c.operation_id, c.dimension, v.viewer_id, c.scope, c.reporter_id, c.key,
       {sign} * count(*), {sign} * sum(c.seizure),
       {sign} * coalesce(sum(c.mass_kg), 0), {sign} * coalesce(sum(c.volume_l), 0),
       {sign} * coalesce(sum(c.tablets), 0), {sign} * coalesce(sum(c.pieces), 0)
FROM contributions c JOIN viewers v ON v.alert_id = c.alert_id
WHERE 1 = 1  -- SQLite: an upsert's SELECT needs a WHERE before ON CONFLICT
GROUP BY c.operation_id, c.dimension, v.viewer_id, c.scope, c.reporter_id, c.key
ON CONFLICT (operation_id, dimension, viewer_id, scope, reporter_id, key) DO UPDATE SET
  alerts = stat_rollup.alerts + excluded.alerts,
  seizures = stat_rollup.seizures + excluded.seizures,
  mass_kg = stat_rollup.mass_kg + excluded.mass_kg,
  volume_l = stat_rollup.volume_l + excluded.volume_l,
  tablets = stat_rollup.tablets + excluded.tablets,
  pieces = stat_rollup.pieces + excluded.pieces
"""  # noqa: S608


@functools.cache
def _compiled(dialect: str, where: str, sign: int = 1) -> TextClause:
    return text(_statement(dialect, where, sign))


async def add_inserted(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """A ``WriteTx.after_insert`` hook for ``alert``: add the alerts just inserted (one
    batch's, whose ``seq`` values form one range)."""
    seqs = [row["seq"] for row in rows]
    dialect = session.get_bind().dialect.name
    await session.execute(
        _compiled(dialect, "seq BETWEEN :first AND :last"),
        {"first": min(seqs), "last": max(seqs)},
    )


async def add(session: AsyncSession, *, alert_id: str) -> None:
    """Add one alert's figures as they now stand (after a change)."""
    await _apply(session, alert_id=alert_id, sign=1)


async def retract(session: AsyncSession, *, alert_id: str) -> None:
    """Take one alert's figures away (before a change). A group left at zero alerts keeps
    its row, for the next alert to fall in it; readers skip it."""
    await _apply(session, alert_id=alert_id, sign=-1)


async def _apply(session: AsyncSession, *, alert_id: str, sign: int) -> None:
    dialect = session.get_bind().dialect.name
    await session.execute(_compiled(dialect, "id = :alert_id", sign), {"alert_id": alert_id})


def rebuild(connection: Connection) -> None:
    """Recompute the whole table from the alerts (synchronous: migrations, bulk seeding)."""
    connection.execute(delete(StatRollup))
    connection.execute(_compiled(connection.dialect.name, "1 = 1"))


async def rebuild_async(connection: AsyncConnection) -> None:
    await connection.run_sync(rebuild)


async def rebuild_store(db: Database) -> int:
    """Rebuild the table of a store that servers may be writing to (``relay rollup``):
    under the write lock every write takes (see app/committer.py), so no batch lands
    between the recount and its commit. Returns the number of rows written."""
    async with db.write_engine.begin() as connection:  # on SQLite: BEGIN IMMEDIATE
        if not db.is_sqlite:
            counter = select(EventCounter.last_seq).where(EventCounter.id == 1)
            await connection.execute(counter.with_for_update())
        await rebuild_async(connection)
        count = select(func.count()).select_from(StatRollup)
        return int((await connection.execute(count)).scalar_one())
