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
from app.services.operations import open_operation_with_reach

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


SEIZURE = Alert.kind == "seizure"
# Dimensions of child rows: an alert counts once in each of its groups.
CHILD_DIMENSIONS = ("commodity", "concealment_method")


def _counts(*, distinct_alerts: bool) -> list[ColumnElement[Any]]:
    """Alerts and seizures; over rows that repeat an alert, each is counted once."""
    if distinct_alerts:
        return [func.count(distinct(Alert.id)), func.count(distinct(case((SEIZURE, Alert.id))))]
    return [func.count(), func.count(case((SEIZURE, 1)))]


def _quantities() -> list[ColumnElement[Any]]:
    """Quantities of seizures' items, in kg, l and counts."""

    def quantity(units: dict[str, float]) -> ColumnElement[Any]:
        return func.coalesce(
            func.sum(
                case(
                    *(
                        (SEIZURE & (AlertItem.unit == unit), AlertItem.quantity * factor)
                        for unit, factor in units.items()
                    ),
                    else_=0.0,
                )
            ),
            0.0,
        )

    return [
        quantity({"kg": 1.0, "g": 0.001}),
        quantity({"l": 1.0, "ml": 0.001}),
        quantity({"tablets": 1.0}),
        quantity({"pieces": 1.0}),
    ]


def _items_of_seizures(query: Select[Any], where: list[ColumnElement[bool]]) -> Select[Any]:
    return (
        query.select_from(Alert)
        .join(AlertItem, AlertItem.alert_id == Alert.id)
        .where(*where, SEIZURE)
    )


async def _by_alert_field(
    session: AsyncSession, keys: list[Any], where: list[ColumnElement[bool]]
) -> tuple[list[tuple[Any, ...]], Figures]:
    """Groups of a field of the alert itself: alerts counted without touching their items,
    quantities from the items of seizures alone. Each alert is in one group, so the
    groups add up to the total."""
    n = len(keys)
    counted = select(*keys, *_counts(distinct_alerts=False)).where(*where).group_by(*keys)
    summed = _items_of_seizures(select(*keys, *_quantities()), where).group_by(*keys)
    counts = {tuple(row[:n]): tuple(row[n:]) for row in await session.execute(counted)}
    sums = {tuple(row[:n]): tuple(row[n:]) for row in await session.execute(summed)}
    rows = [(*key, *figures, *sums.get(key, (0.0,) * 4)) for key, figures in counts.items()]
    total = Figures()
    for row in rows:
        total.add(Figures(*row[n:]))
    return rows, total


async def _by_child_rows(
    session: AsyncSession, by: str, keys: list[Any], where: list[ColumnElement[bool]]
) -> tuple[list[tuple[Any, ...]], Figures]:
    """Groups of commodities or concealment methods, from the alerts joined to them (an
    alert without any falls in the null group); the total's counts from the alerts alone."""
    query = select(*keys, *_counts(distinct_alerts=True), *_quantities()).select_from(Alert)
    query = query.outerjoin(AlertItem, AlertItem.alert_id == Alert.id)
    if by == "concealment_method":
        query = query.outerjoin(AlertConcealment, AlertConcealment.alert_id == Alert.id)
    rows = [tuple(row) for row in await session.execute(query.where(*where).group_by(*keys))]
    counts = (await session.execute(select(*_counts(distinct_alerts=False)).where(*where))).one()
    if by == "commodity":  # every item is in the group of its commodity
        sums = [sum(row[len(keys) + 2 + i] for row in rows) for i in range(4)]
    else:  # an item is in the group of each concealment method of its alert
        summed = _items_of_seizures(select(*_quantities()), where)
        sums = list((await session.execute(summed)).one())
    return rows, Figures(*counts, *sums)


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
    op, reach = await open_operation_with_reach(session, caller=caller, code=operation_code)
    dialect = session.get_bind().dialect.name
    where = [Alert.operation_id == op.id, Alert.status == "open", reach.alert_clause(op.id)]
    keys = _keys(by, dialect)
    if by in CHILD_DIMENSIONS:
        rows, total = await _by_child_rows(session, by, keys, where)
    else:
        rows, total = await _by_alert_field(session, keys, where)

    codes: dict[int, str] = {}
    if by == "reported_by":
        codes = await administration_codes(session)
    stats = Stats(operation=op.code, by=by, total=total)
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
