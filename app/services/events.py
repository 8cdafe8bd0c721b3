"""The event log of API.md section 7: appending (inside write jobs) and reading."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.committer import WriteTx
from app.jsonenc import dumps
from app.models import Alert, AlertItem, AlertRecipient, Event, EventCounter
from app.models.base import utcnow
from app.realtime.events import AlertFacts, LiveEvent
from app.schemas.types import format_utc
from app.services.audit import AuditSink
from app.services.keys import Caller
from app.services.operations import open_operation_for_reading
from app.services.visibility import Reach, reach_of


def append(
    tx: WriteTx,
    *,
    type: str,
    operation: tuple[int, str],
    alert_id: str,
    body: dict[str, Any],
    facts: AlertFacts,
    seq: int | None = None,
) -> None:
    """Append one event; ``body`` holds the type-specific fields (``alert``, ``ack``, ...).

    ``seq`` is given when it was drawn beforehand (an alert records its creation's ``seq``).
    """
    seq = seq if seq is not None else tx.next_seq()
    at = utcnow()
    operation_id, operation_code = operation
    payload = {"seq": seq, "type": type, "operation": operation_code, "at": format_utc(at), **body}
    tx.add_event(
        {
            "seq": seq,
            "type": type,
            "operation_id": operation_id,
            "alert_id": alert_id,
            "at": at,
            "payload": dumps(payload).decode(),
        },
        facts,
    )


class RoutedAlert(Protocol):
    """What ``facts_of`` reads of an alert: an ``Alert`` or a row of its columns."""

    @property
    def operation_id(self) -> int: ...
    @property
    def reporter_id(self) -> int: ...
    @property
    def audience_scope(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def transport_mode(self) -> str | None: ...
    @property
    def territory(self) -> str: ...


def facts_of(
    alert: RoutedAlert, *, recipient_ids: Iterable[int], commodities: Iterable[str]
) -> AlertFacts:
    """What the stream needs to know of ``alert`` to route an event about it."""
    return AlertFacts(
        operation_id=alert.operation_id,
        reporter_id=alert.reporter_id,
        scope=alert.audience_scope,
        recipient_ids=frozenset(recipient_ids),
        kind=alert.kind,
        priority=alert.priority,
        transport_mode=alert.transport_mode,
        territory=alert.territory,
        commodities=frozenset(commodities),
    )


async def stored_facts(session: AsyncSession, alert: Alert) -> AlertFacts:
    recipients = await session.execute(
        select(AlertRecipient.administration_id).where(AlertRecipient.alert_id == alert.id)
    )
    commodities = await session.execute(
        select(AlertItem.commodity).where(AlertItem.alert_id == alert.id)
    )
    return facts_of(alert, recipient_ids=recipients.scalars(), commodities=commodities.scalars())


async def head(session: AsyncSession) -> int:
    """The newest committed ``seq``."""
    return int(
        (
            await session.execute(select(EventCounter.last_seq).where(EventCounter.id == 1))
        ).scalar_one()
    )


async def epoch(session: AsyncSession) -> str:
    return str(
        (await session.execute(select(EventCounter.epoch).where(EventCounter.id == 1))).scalar_one()
    )


async def read_visible(
    session: AsyncSession,
    *,
    reach: Reach,
    since: int,
    operation_id: int | None,
    limit: int,
    where: Sequence[ColumnElement[bool]] = (),
) -> list[tuple[int, str]]:
    """``(seq, payload)`` of events after ``since`` about alerts ``reach`` may see (and
    ``where`` keeps), oldest first."""
    query = (
        select(Event.seq, Event.payload)
        .join(Alert, Alert.id == Event.alert_id)
        .where(Event.seq > since, reach.alert_clause(operation_id, paged=True), *where)
        .order_by(Event.seq)
        .limit(limit)
    )
    if operation_id is not None:
        query = query.where(Event.operation_id == operation_id)
    return [(seq, payload) for seq, payload in (await session.execute(query)).all()]


def page_body(rows: list[tuple[int, str]], *, since: int) -> bytes:
    """The ``/v1/events`` page, spliced from stored payloads without decoding them."""
    next_since = rows[-1][0] if rows else since
    items = ",".join(payload for _, payload in rows)
    return f'{{"items":[{items}],"next_since":{next_since}}}'.encode()


async def read_events(
    session: AsyncSession,
    sink: AuditSink,
    *,
    caller: Caller,
    since: int,
    operation_code: str | None,
    limit: int,
) -> bytes:
    """A page of ``GET /v1/events`` for ``caller``."""
    assert caller.administration_id is not None
    operation_id = None
    if operation_code is not None:
        op, reach = await open_operation_for_reading(session, caller=caller, code=operation_code)
        operation_id = op.id
    else:
        reach = await reach_of(session, administration_id=caller.administration_id)
    rows = await read_visible(
        session, reach=reach, since=since, operation_id=operation_id, limit=limit
    )
    sink.record(
        caller=caller,
        action="events.read",
        operation=operation_code,
        query={"since": since, "limit": limit, "returned": len(rows)},
    )
    return page_body(rows, since=since)


async def fetch_live(
    session: AsyncSession, *, after: int, up_to: int, limit: int
) -> list[LiveEvent]:
    """Committed events in ``(after, up_to]`` with their alerts' facts, for the stream."""
    rows = (
        await session.execute(
            select(Event.seq, Event.type, Event.payload, Alert)
            .join(Alert, Alert.id == Event.alert_id)
            .where(Event.seq > after, Event.seq <= up_to)
            .order_by(Event.seq)
            .limit(limit)
        )
    ).all()
    alert_ids = {row[3].id for row in rows}
    recipients: dict[str, set[int]] = {}
    commodities: dict[str, set[str]] = {}
    if alert_ids:
        for alert_id, administration_id in await session.execute(
            select(AlertRecipient.alert_id, AlertRecipient.administration_id).where(
                AlertRecipient.alert_id.in_(alert_ids)
            )
        ):
            recipients.setdefault(alert_id, set()).add(administration_id)
        for alert_id, commodity in await session.execute(
            select(AlertItem.alert_id, AlertItem.commodity).where(AlertItem.alert_id.in_(alert_ids))
        ):
            commodities.setdefault(alert_id, set()).add(commodity)
    return [
        LiveEvent(
            seq,
            type_,
            facts_of(
                alert,
                recipient_ids=recipients.get(alert.id, ()),
                commodities=commodities.get(alert.id, ()),
            ),
            payload,
        )
        for seq, type_, payload, alert in rows
    ]
