"""Listing an operation's visible alerts with the filters of API.md section 6."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, literal_column, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Unprocessable
from app.models import Administration, Alert, AlertConcealment, AlertIdentifier, AlertItem
from app.services.alerts import render_many
from app.services.audit import AuditSink
from app.services.keys import Caller
from app.services.operations import open_operation
from app.services.pagination import Cursor, encode_cursor
from app.services.visibility import reach_of

Sort = Literal["-occurred_at", "occurred_at", "-seq", "seq"]
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Every filter of the list endpoint; also used by export."""

    kind: list[str] = field(default_factory=list)
    priority: list[str] = field(default_factory=list)
    commodity: list[str] = field(default_factory=list)
    transport_mode: list[str] = field(default_factory=list)
    concealment_method: list[str] = field(default_factory=list)
    detection_method: list[str] = field(default_factory=list)
    reported_by: str | None = None
    territory: str | None = None
    origin: str | None = None
    destination: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    identifier: str | None = None
    q: str | None = None
    status: str | None = None

    @classmethod
    def of(cls, query: Any) -> AlertFilter:
        """From a query model holding fields of the same names."""
        return cls(**{name: _plain(getattr(query, name)) for name in cls.__slots__})

    def as_query(self) -> dict[str, Any]:
        """The filters that were set, for the audit record."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if value:
                out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value) if isinstance(value, StrEnum) else value


def fulltext_clause(dialect: str, q: str) -> ColumnElement[bool]:
    """``q`` as a full-text match over summary, narrative and concealment (all words must match)."""
    words = WORD.findall(q)
    if not words:
        raise Unprocessable("q holds no searchable words", errors=[(("query", "q"), "no words")])
    if dialect == "sqlite":
        # Quote every word so that user input is never parsed as FTS5 query syntax.
        match = " ".join('"' + word.replace('"', "") + '"' for word in words[:32])
        return Alert.seq.in_(
            select(literal_column("rowid"))
            .select_from(text("alert_fts"))
            .where(text("alert_fts MATCH :fts_query").bindparams(fts_query=match))
        )
    # Literal SQL, exactly as the GIN index of the initial migration, so the planner uses it.
    document: ColumnElement[Any] = literal_column(
        "to_tsvector('english', coalesce(alert.summary, '') || ' ' || "
        "coalesce(alert.narrative, '') || ' ' || coalesce(alert.concealment, ''))"
    )
    return document.op("@@")(func.plainto_tsquery(literal_column("'english'"), " ".join(words)))


def filter_clauses(
    where: AlertFilter, *, dialect: str, reporter_id: int | None
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for column, values in (
        (Alert.kind, where.kind),
        (Alert.priority, where.priority),
        (Alert.transport_mode, where.transport_mode),
        (Alert.detection_method, where.detection_method),
    ):
        if values:
            clauses.append(column.in_(values))
    if where.commodity:
        clauses.append(
            Alert.id.in_(select(AlertItem.alert_id).where(AlertItem.commodity.in_(where.commodity)))
        )
    if where.concealment_method:
        clauses.append(
            Alert.id.in_(
                select(AlertConcealment.alert_id).where(
                    AlertConcealment.method.in_(where.concealment_method)
                )
            )
        )
    if where.identifier is not None:
        clauses.append(
            Alert.id.in_(
                select(AlertIdentifier.alert_id).where(AlertIdentifier.value == where.identifier)
            )
        )
    if where.reported_by is not None:
        clauses.append(Alert.reporter_id == (reporter_id if reporter_id is not None else -1))
    for column, value in (
        (Alert.territory, where.territory),
        (Alert.origin, where.origin),
        (Alert.destination, where.destination),
        (Alert.status, where.status),
    ):
        if value is not None:
            clauses.append(column == value)
    if where.occurred_from is not None:
        clauses.append(Alert.occurred_at >= where.occurred_from)
    if where.occurred_to is not None:
        clauses.append(Alert.occurred_at < where.occurred_to)
    if where.q is not None:
        clauses.append(fulltext_clause(dialect, where.q))
    return clauses


async def visible_alerts_query(
    session: AsyncSession, *, caller: Caller, operation_code: str, where: AlertFilter
) -> tuple[Select[Alert], str]:
    """The select of the operation's alerts that ``caller`` may see and ``where`` keeps."""
    assert caller.administration_id is not None
    op = await open_operation(session, caller=caller, code=operation_code)
    reach = await reach_of(session, administration_id=caller.administration_id)
    reporter_id = None
    if where.reported_by is not None:
        reporter_id = (
            await session.execute(
                select(Administration.id).where(Administration.code == where.reported_by)
            )
        ).scalar_one_or_none()
    dialect = session.get_bind().dialect.name
    query = select(Alert).where(
        Alert.operation_id == op.id,
        reach.alert_clause(),
        *filter_clauses(where, dialect=dialect, reporter_id=reporter_id),
    )
    return query, op.code


def _order(query: Select[Alert], sort: Sort, cursor: Cursor | None) -> Select[Alert]:
    descending = sort.startswith("-")
    by_time = sort.endswith("occurred_at")
    if cursor is not None:
        if cursor.string("sort") != sort:
            raise Unprocessable(
                "The cursor belongs to another sort order",
                errors=[(("query", "cursor"), "issued for another sort")],
            )
        seq = cursor.integer("seq")
        after_seq = Alert.seq < seq if descending else Alert.seq > seq
        if by_time:
            try:
                at: datetime | None = datetime.fromisoformat(cursor.string("at"))
            except ValueError:
                at = None
            if at is None or at.tzinfo is None:
                raise Unprocessable("Invalid cursor", errors=[(("query", "cursor"), "invalid")])
            after_time = Alert.occurred_at < at if descending else Alert.occurred_at > at
            query = query.where(or_(after_time, and_(Alert.occurred_at == at, after_seq)))
        else:
            query = query.where(after_seq)
    columns = (Alert.occurred_at, Alert.seq) if by_time else (Alert.seq,)
    return query.order_by(*(c.desc() if descending else c for c in columns))


def _position(alert: Alert, sort: Sort) -> dict[str, Any]:
    return {"sort": sort, "seq": alert.seq, "at": alert.occurred_at.isoformat()}


async def list_alerts(
    session: AsyncSession,
    sink: AuditSink,
    *,
    caller: Caller,
    operation_code: str,
    where: AlertFilter,
    sort: Sort,
    limit: int,
    cursor: Cursor | None,
) -> tuple[list[dict[str, Any]], str | None]:
    query, code = await visible_alerts_query(
        session, caller=caller, operation_code=operation_code, where=where
    )
    rows = list((await session.execute(_order(query, sort, cursor).limit(limit + 1))).scalars())
    page = rows[:limit]
    next_cursor = encode_cursor(_position(page[-1], sort)) if len(rows) > limit else None
    sink.record(
        caller=caller,
        action="alert.search",
        operation=code,
        query={**where.as_query(), "sort": sort},
    )
    return await render_many(session, page), next_cursor
