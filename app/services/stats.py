"""Statistics for the OCU (API.md section 6): counts and quantities by one dimension,
over the alerts the caller may see, withdrawn ones left out. Read from the figures that
``app/services/rollup.py`` keeps added up as alerts are written."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import StatRollup
from app.services.administrations import administration_codes
from app.services.audit import AuditSink
from app.services.keys import Caller
from app.services.operations import open_operation_for_reading

Dimension = Literal[
    "commodity",
    "transport_mode",
    "reported_by",
    "territory",
    "origin",
    "concealment_method",
    "detection_method",
    "week",
    "route",
]
DIMENSIONS: tuple[str, ...] = Dimension.__args__  # type: ignore[attr-defined]


@dataclass(slots=True)
class Figures:
    alerts: int = 0
    seizures: int = 0
    mass_kg: float = 0.0
    volume_l: float = 0.0
    tablets: float = 0.0
    pieces: float = 0.0

    def add(self, other: Figures) -> None:
        self.alerts += other.alerts
        self.seizures += other.seizures
        self.mass_kg += other.mass_kg
        self.volume_l += other.volume_l
        self.tablets += other.tablets
        self.pieces += other.pieces

    def render(self) -> dict[str, Any]:
        return {
            "alerts": self.alerts,
            "seizures": self.seizures,
            # Sums kept by adding and taking away may stray below zero by a rounding error.
            "mass_kg": round(max(self.mass_kg, 0.0), 6),
            "volume_l": round(max(self.volume_l, 0.0), 6),
            "tablets": round(max(self.tablets, 0.0), 6),
            "pieces": round(max(self.pieces, 0.0), 6),
        }


@dataclass(slots=True)
class Stats:
    operation: str
    by: str
    groups: dict[str | None, Figures] = field(default_factory=dict)
    total: Figures = field(default_factory=Figures)

    def render(self) -> dict[str, Any]:
        ordered = sorted(self.groups.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        return {
            "operation": self.operation,
            "by": self.by,
            "groups": [{"key": key, **figures.render()} for key, figures in ordered],
            "total": self.total.render(),
        }


def _figures() -> list[ColumnElement[Any]]:
    return [
        func.sum(StatRollup.alerts),
        func.sum(StatRollup.seizures),
        func.sum(StatRollup.mass_kg),
        func.sum(StatRollup.volume_l),
        func.sum(StatRollup.tablets),
        func.sum(StatRollup.pieces),
    ]


def _figures_of(row: Any) -> Figures:
    """Sums come back as Decimal (PostgreSQL's sum of bigint) or None (no rows)."""
    alerts, seizures, *quantities = (value or 0 for value in row)
    return Figures(int(alerts), int(seizures), *(float(q) for q in quantities))


def _iso_week(day: str) -> str:
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


async def operation_stats(
    session: AsyncSession, sink: AuditSink, *, caller: Caller, operation_code: str, by: str
) -> dict[str, Any]:
    """``by`` one dimension; an alert with several commodities (or concealments) counts in
    each of their groups, and a commodity group sums only that commodity's items.

    Read from ``stat_rollup`` (kept by app/services/rollup.py in each write's transaction):
    rows per group and audience slice, however many alerts there are."""
    assert caller.administration_id is not None
    op, reach = await open_operation_for_reading(session, caller=caller, code=operation_code)
    visible = [StatRollup.operation_id == op.id, reach.rollup_clause(op.id)]
    key = StatRollup.reporter_id if by == "reported_by" else StatRollup.key
    groups = (
        select(key, *_figures())
        .where(*visible, StatRollup.dimension == _STORED.get(by, by))
        .group_by(key)
        .having(func.sum(StatRollup.alerts) > 0)
    )
    total = select(*_figures()).where(*visible, StatRollup.dimension == "total")
    codes = await administration_codes(session) if by == "reported_by" else {}
    stats = Stats(operation=op.code, by=by, total=_figures_of((await session.execute(total)).one()))
    merged: dict[str | None, Figures] = defaultdict(Figures)
    for raw, *figures in await session.execute(groups):
        merged[_group_key(by, raw, codes)].add(_figures_of(figures))
    stats.groups = dict(merged)
    sink.record(caller=caller, action="alert.stats", operation=op.code, query={"by": by})
    return stats.render()


# Dimensions read from another stored one: reporters from the totals, weeks from days.
_STORED = {"reported_by": "total", "week": "day"}


def _group_key(by: str, raw: Any, codes: dict[int, str]) -> str | None:
    if by == "reported_by":
        return codes.get(raw)
    if raw == "":
        return None
    return _iso_week(raw) if by == "week" else str(raw)
