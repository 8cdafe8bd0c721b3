"""Statistics for the OCU (API.md section 6): counts and quantities by one dimension,
over the alerts the caller may see, withdrawn ones left out. Aggregated in SQL."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Alert, AlertConcealment, AlertItem
from app.services.administrations import administration_codes
from app.services.audit import AuditSink
from app.services.keys import Caller
from app.services.operations import open_operation
from app.services.visibility import reach_of

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
            "mass_kg": round(self.mass_kg, 6),
            "volume_l": round(self.volume_l, 6),
            "tablets": round(self.tablets, 6),
            "pieces": round(self.pieces, 6),
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


def _aggregates() -> list[ColumnElement[Any]]:
    """Distinct alerts and seizures; quantities of seizures' items, in kg, l and counts."""
    seizure = Alert.kind == "seizure"

    def quantity(units: dict[str, float]) -> ColumnElement[Any]:
        return func.coalesce(
            func.sum(
                case(
                    *(
                        (seizure & (AlertItem.unit == unit), AlertItem.quantity * factor)
                        for unit, factor in units.items()
                    ),
                    else_=0.0,
                )
            ),
            0.0,
        )

    return [
        func.count(distinct(Alert.id)),
        func.count(distinct(case((seizure, Alert.id)))),
        quantity({"kg": 1.0, "g": 0.001}),
        quantity({"l": 1.0, "ml": 0.001}),
        quantity({"tablets": 1.0}),
        quantity({"pieces": 1.0}),
    ]


def _day(dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.date(Alert.occurred_at)
    return func.date(func.timezone("UTC", Alert.occurred_at))


def _keys(by: str, dialect: str) -> list[Any]:
    keys: dict[str, list[Any]] = {
        "commodity": [AlertItem.commodity],
        "transport_mode": [Alert.transport_mode],
        "reported_by": [Alert.reporter_id],
        "territory": [Alert.territory],
        "origin": [Alert.origin],
        "concealment_method": [AlertConcealment.method],
        "detection_method": [Alert.detection_method],
        "week": [_day(dialect)],
        "route": [Alert.origin, Alert.destination],
    }
    return keys[by]


def _iso_week(day: Any) -> str | None:
    if day is None:
        return None
    value = day if isinstance(day, date) else date.fromisoformat(str(day))
    year, week, _ = value.isocalendar()
    return f"{year}-W{week:02d}"


async def operation_stats(
    session: AsyncSession, sink: AuditSink, *, caller: Caller, operation_code: str, by: str
) -> dict[str, Any]:
    """``by`` one dimension; an alert with several commodities (or concealments) counts in
    each of their groups, and a commodity group sums only that commodity's items."""
    assert caller.administration_id is not None
    op = await open_operation(session, caller=caller, code=operation_code)
    reach = await reach_of(session, administration_id=caller.administration_id)
    dialect = session.get_bind().dialect.name
    where = [Alert.operation_id == op.id, Alert.status == "open", reach.alert_clause()]
    keys = _keys(by, dialect)

    def base(query: Select[Any], *, with_concealment: bool) -> Select[Any]:
        query = query.select_from(Alert).outerjoin(AlertItem, AlertItem.alert_id == Alert.id)
        if with_concealment:
            query = query.outerjoin(AlertConcealment, AlertConcealment.alert_id == Alert.id)
        return query.where(*where)

    grouped = base(select(*keys, *_aggregates()), with_concealment=by == "concealment_method")
    rows = (await session.execute(grouped.group_by(*keys))).all()
    total_row = (await session.execute(base(select(*_aggregates()), with_concealment=False))).one()

    codes: dict[int, str] = {}
    if by == "reported_by":
        codes = await administration_codes(session)
    stats = Stats(operation=op.code, by=by, total=Figures(*total_row))
    merged: dict[str | None, Figures] = defaultdict(Figures)
    for row in rows:
        raw, figures = row[: len(keys)], Figures(*row[len(keys) :])
        merged[_group_key(by, raw, codes)].add(figures)
    stats.groups = dict(merged)
    sink.record(caller=caller, action="alert.stats", operation=op.code, query={"by": by})
    return stats.render()


def _group_key(by: str, raw: tuple[Any, ...], codes: dict[int, str]) -> str | None:
    if by == "week":
        return _iso_week(raw[0])
    if by == "reported_by":
        return codes.get(raw[0])
    if by == "route":
        origin, destination = raw
        return f"{origin}-{destination}" if origin and destination else None
    return None if raw[0] is None else str(raw[0])
