"""Listing an operation's visible alerts with the filters of API.md section 6."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import SQLCoreOperations

from app.errors import Unprocessable
from app.models import Ack, Administration, Alert, AlertConcealment, AlertIdentifier
from app.models.alert import commodity_mask
from app.services import fulltext
from app.services.audit import AuditSink
from app.services.keys import Caller
from app.services.operations import open_operation_for_reading
from app.services.pagination import Cursor, encode_cursor
from app.services.rendering import PAGE_ACK_COLUMNS, Listed, listed, render_page

Sort = Literal["-occurred_at", "occurred_at", "-seq", "seq"]
# SQLite full text, by how many alerts match the words (counted up to COMMON_MATCHES):
# up to FEW, a page starts from them, found by seq in the list index, and sorts them;
# up to COMMON, the list index is read in sort order and each alert tested against the
# matches, gathered once; beyond, each alert read is looked up in the full-text index
# (tens of microseconds each, but with so many matching a page ends after a few hundred).
FEW_MATCHES = 5_000
COMMON_MATCHES = 150_000
# PostgreSQL full text: the planner takes the words of ``q`` as independent, so for words
# that go together ("guitar amplifier") it expects a handful of matches, gathers every one
# through the GIN index and sorts them: hundreds of milliseconds for tens of thousands.
# Reading the list index in sort order and testing each alert's stored document costs
# instead in inverse proportion to how many match. A page is therefore first looked for
# among the next FULLTEXT_SAMPLE alerts in sort order; if they do not fill it, the share
# that matched picks the read: at least FULLTEXT_IN_ORDER of them, sort order again,
# else every match after the cursor from the GIN index, sorted (``_order``'s
# ``gathered``). At a 1 % share a page costs either way some 5,000 alerts read; below it
# the GIN index costs less, and a sample overstates a word whose matches bunch in time
# (4 matches in a sample of 1,000 here led to 30,000 alerts tested for the next page).
FULLTEXT_SAMPLE = 1_000
FULLTEXT_IN_ORDER = 10
# A list page's alerts are read as rows of what rendering and the cursor need, with the
# reporter's code (looked up per alert: a join would leave SQLite, which keeps no
# statistics, free to start from the administrations), not as ORM objects.
PAGE_COLUMNS = (
    Alert.id,
    Alert.seq,
    Alert.reporter_key_label,
    Alert.revision,
    Alert.document,
    Alert.status,
    Alert.withdrawn_reason,
    Alert.occurred_at,
    Alert.created_at,
    Alert.updated_at,
    select(Administration.code)
    .where(Administration.id == Alert.reporter_id)
    .scalar_subquery()
    .label("reported_by"),
)
# The list index by seq: it finds an alert of an operation by seq and carries what the
# filters test.
LIST_BY_SEQ = "ix_alert_list_seq"


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


def filter_clauses(
    where: AlertFilter, *, dialect: str, reporter_id: int | None, look_up_words: bool = False
) -> list[ColumnElement[bool]]:
    """The filters as predicates over ``Alert``; those on child rows are tested per alert
    (``EXISTS``; commodities excepted: see ``COMMODITY_BITS``), so a page read in sort order
    stops early instead of gathering every match."""
    clauses: list[ColumnElement[bool]] = []
    for column, values in (
        (Alert.kind, where.kind),
        (Alert.priority, where.priority),
        (Alert.transport_mode, where.transport_mode),
        (Alert.detection_method, where.detection_method),
    ):
        if values:
            clauses.append(column.in_(values))
    if where.commodity:  # on the list index's copy of the items' commodities
        clauses.append(Alert.commodity_mask.bitwise_and(commodity_mask(where.commodity)) != 0)
    if where.concealment_method:
        clauses.append(
            exists().where(
                AlertConcealment.alert_id == Alert.id,
                AlertConcealment.method.in_(where.concealment_method),
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
        clauses.append(fulltext.clause(dialect, where.q, look_up=look_up_words))
    return clauses


@dataclass(frozen=True, slots=True)
class Scope:
    """The operation's alerts that a caller may see and a filter keeps, and, for SQLite
    (which keeps no statistics), whether to start from the few a full-text query names.
    A PostgreSQL page with ``q`` leaves the words out of ``clauses`` and holds them in
    ``words``, in its two forms, for ``_fulltext_page`` to choose from."""

    clauses: list[ColumnElement[bool]]
    operation: str
    operation_id: int
    from_fulltext: bool = False
    words: tuple[ColumnElement[bool], ColumnElement[bool]] | None = None  # (indexed, tested)

    def reading(self, words: ColumnElement[bool]) -> Scope:
        return replace(self, clauses=[*self.clauses, words], words=None)


async def visible_scope(
    session: AsyncSession,
    *,
    caller: Caller,
    operation_code: str,
    where: AlertFilter,
    paged: bool = False,
) -> Scope:
    """What a list (``paged``: a page at a time) or an export of ``operation_code`` for
    ``caller`` reads."""
    assert caller.administration_id is not None
    op, reach = await open_operation_for_reading(session, caller=caller, code=operation_code)
    reporter_id = None
    if where.reported_by is not None:
        reporter_id = (
            await session.execute(
                select(Administration.id).where(Administration.code == where.reported_by)
            )
        ).scalar_one_or_none()
    dialect = session.get_bind().dialect.name
    # Told nothing, SQLite reads the operation's list index in sort order and tests each
    # alert, which takes seconds when only a handful match. An identifier names a handful:
    # ``+ 0`` keeps that index out of its choice, so it starts from them and sorts them.
    # For words, see FEW_MATCHES.
    by_identifier = dialect == "sqlite" and where.identifier is not None
    matches = None
    if dialect == "sqlite" and where.q is not None:
        matches = await fulltext.matches(session, where.q, up_to=COMMON_MATCHES)
    from_fulltext = not by_identifier and matches is not None and matches <= FEW_MATCHES
    words = None
    if dialect == "postgresql" and where.q is not None and paged:
        words = (fulltext.clause(dialect, where.q), fulltext.clause(dialect, where.q, look_up=True))
        where = replace(where, q=None)
    in_operation = (Alert.operation_id + 0 if by_identifier else Alert.operation_id) == op.id
    clauses = [
        in_operation,
        reach.alert_clause(op.id, paged=paged),
        *filter_clauses(
            where,
            dialect=dialect,
            reporter_id=reporter_id,
            look_up_words=paged and matches is not None and matches >= COMMON_MATCHES,
        ),
    ]
    return Scope(clauses, op.code, op.id, from_fulltext, words)


async def visible_alerts_query(
    session: AsyncSession, *, caller: Caller, operation_code: str, where: AlertFilter
) -> tuple[Select[Alert], str]:
    """The select of the operation's alerts that ``caller`` may see and ``where`` keeps."""
    scope = await visible_scope(session, caller=caller, operation_code=operation_code, where=where)
    return select(Alert).where(*scope.clauses), scope.operation


def _order(
    query: Select[Any], sort: Sort, cursor: Cursor | None, *, gathered: bool = False
) -> Select[Any]:
    """``query`` after ``cursor`` in ``sort`` order. ``gathered``: ordered and bounded by
    expressions that no index holds, so that PostgreSQL gathers the matches another index
    names (GIN) and sorts them, rather than read the list index in order from the cursor
    testing each alert, or (in a plan made for any cursor) intersect the matches with
    everything the list index holds before the cursor."""
    descending = sort.startswith("-")
    by_time = sort.endswith("occurred_at")
    time_key: SQLCoreOperations[Any] = Alert.occurred_at
    seq_key: SQLCoreOperations[Any] = Alert.seq
    if gathered:
        time_key, seq_key = Alert.occurred_at + literal_column("interval '0'"), Alert.seq + 0
    if cursor is not None:
        if cursor.string("sort") != sort:
            raise Unprocessable(
                "The cursor belongs to another sort order",
                errors=[(("query", "cursor"), "issued for another sort")],
            )
        seq = cursor.integer("seq")
        after_seq = seq_key < seq if descending else seq_key > seq
        if by_time:
            at = cursor.timestamp("at")
            # After (at, seq) in sort order; as columns, the first term bounds the index
            # range (``gathered`` keeps it from doing so on purpose).
            if descending:
                after = and_(time_key <= at, or_(time_key < at, after_seq))
            else:
                after = and_(time_key >= at, or_(time_key > at, after_seq))
            query = query.where(after)
        else:
            query = query.where(after_seq)
    columns = (time_key, seq_key) if by_time else (seq_key,)
    return query.order_by(*(c.desc() if descending else c for c in columns))


def page_query(
    scope: Scope,
    *,
    sort: Sort,
    cursor: Cursor | None,
    limit: int,
    within: ColumnElement[bool] | None = None,
    gathered: bool = False,
) -> Select[Any]:
    """Up to ``limit + 1`` alerts after ``cursor`` (and ``within`` a stretch of the sort
    order), with their acknowledgements (see ``rendering.listed``). The page's positions
    come first, from the columns the list indexes carry (PostgreSQL reads them from the
    index alone); only those alerts are then read whole. ``gathered``: see ``_order``."""
    positions = select(Alert.seq).where(*scope.clauses)
    if within is not None:
        positions = positions.where(within)
    if scope.from_fulltext:
        positions = positions.with_hint(Alert, f"INDEXED BY {LIST_BY_SEQ}", "sqlite")
    page = _order(positions, sort, cursor, gathered=gathered).limit(limit + 1).subquery()
    alerts = (
        select(*PAGE_COLUMNS, *PAGE_ACK_COLUMNS)
        .join(page, Alert.seq == page.c.seq)
        .outerjoin(Ack, Ack.alert_id == Alert.id)
    )
    return _order(alerts, sort, None).order_by(Ack.at)


async def _fulltext_page(
    session: AsyncSession, scope: Scope, *, sort: Sort, cursor: Cursor | None, limit: int
) -> list[Listed]:
    """A PostgreSQL page with ``q``: see FULLTEXT_SAMPLE."""
    assert scope.words is not None
    indexed, tested = scope.words
    in_sort_order = scope.reading(tested)
    within = _stretch(scope.operation_id, sort=sort, cursor=cursor)
    query = page_query(in_sort_order, sort=sort, cursor=cursor, limit=limit, within=within)
    rows = await _read(session, query)
    if len(rows) > limit:  # the page, found among the sample
        return rows
    if len(rows) >= FULLTEXT_IN_ORDER:
        return await _read(
            session, page_query(in_sort_order, sort=sort, cursor=cursor, limit=limit)
        )
    # Every match after the cursor, from the GIN index, sorted. (Left to choose, the
    # planner reads the list index in order from a cursor instead, testing each alert:
    # ten times the alerts for a word one alert in 500 holds.)
    gin = page_query(scope.reading(indexed), sort=sort, cursor=cursor, limit=limit, gathered=True)
    return await _read(session, gin)


async def _read(session: AsyncSession, query: Select[Any]) -> list[Listed]:
    """A page's alerts, read through the session's connection: plain rows need none of the
    ORM's result handling, which costs a fraction of a millisecond a page."""
    connection = await session.connection()
    return listed(await connection.execute(query))


def _stretch(operation_id: int, *, sort: Sort, cursor: Cursor | None) -> ColumnElement[bool]:
    """The operation's next FULLTEXT_SAMPLE alerts after ``cursor`` in ``sort`` order (all
    that are left, if fewer), as a bound on the sort column that an index range can use."""
    by_time = sort.endswith("occurred_at")
    column = Alert.occurred_at if by_time else Alert.seq
    last = cast(Select[Any], select(column).where(Alert.operation_id == operation_id))
    last = _order(last, sort, cursor).offset(FULLTEXT_SAMPLE - 1).limit(1)
    descending = sort.startswith("-")
    end: ColumnElement[Any]
    if by_time:
        end = literal_column(f"'{'-' if descending else ''}infinity'::timestamptz")
    else:
        end = literal_column("0" if descending else str(2**62))
    bound = func.coalesce(last.scalar_subquery(), end)
    return column >= bound if descending else column <= bound


def _position(last: Listed, sort: Sort) -> dict[str, Any]:
    alert = last.alert
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
    scope = await visible_scope(
        session, caller=caller, operation_code=operation_code, where=where, paged=True
    )
    if scope.words is not None:
        rows = await _fulltext_page(session, scope, sort=sort, cursor=cursor, limit=limit)
    else:
        rows = await _read(session, page_query(scope, sort=sort, cursor=cursor, limit=limit))
    page = rows[:limit]
    next_cursor = encode_cursor(_position(page[-1], sort)) if len(rows) > limit else None
    sink.record(
        caller=caller,
        action="alert.search",
        operation=scope.operation,
        query={**where.as_query(), "sort": sort},
    )
    return render_page(page, operation=scope.operation), next_cursor
