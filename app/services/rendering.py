"""How a stored alert reads (API.md section 5): its document with what the server adds,
its codes and its current acknowledgements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.jsonenc import loads
from app.models import Ack, Administration, Operation
from app.schemas.types import format_utc
from app.services.administrations import administration_codes

# The code of an acknowledgement's administration, looked up per ack (a join would leave
# SQLite, which keeps no statistics, free to start from the administrations).
ADMINISTRATION_OF_ACK = (
    select(Administration.code).where(Administration.id == Ack.administration_id).scalar_subquery()
)
# What a list page reads of its alerts' acknowledgements, outer-joined to the alerts in the
# page's query (one query for the page instead of two): an alert comes once per ack, or
# once with these null if it has none.
PAGE_ACK_COLUMNS = (
    Ack.status.label("ack_status"),
    Ack.note.label("ack_note"),
    Ack.by_label.label("ack_by"),
    Ack.at.label("ack_at"),
    ADMINISTRATION_OF_ACK.label("ack_administration"),
)


class RenderedAlert(Protocol):
    """What ``render`` reads of a stored alert: an ``Alert`` or a row of its columns (list
    pages read rows, which cost a fraction of loading ORM objects)."""

    @property
    def id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def reporter_key_label(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def document(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def withdrawn_reason(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class StoredAlert(RenderedAlert, Protocol):
    """A stored alert with the ids ``render_many`` looks up codes for."""

    @property
    def operation_id(self) -> int: ...
    @property
    def reporter_id(self) -> int: ...


class ListedAlert(RenderedAlert, Protocol):
    """A list page's row: the alert's columns and its reporter's code, read in one query."""

    @property
    def reported_by(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


def render(
    alert: RenderedAlert,
    *,
    operation: str,
    reported_by: str,
    acks: list[dict[str, Any]],
    document: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The alert as readers see it; ``document`` spares parsing the one just stored."""
    return {
        "id": alert.id,
        "operation": operation,
        "seq": alert.seq,
        "revision": alert.revision,
        **(document if document is not None else loads(alert.document)),
        "reported_by": reported_by,
        "reported_by_key": alert.reporter_key_label,
        "created_at": format_utc(alert.created_at),
        "updated_at": format_utc(alert.updated_at),
        "status": alert.status,
        "withdrawn_reason": alert.withdrawn_reason,
        "acks": acks,
    }


class RenderedAck(Protocol):
    """What ``render_ack`` reads of an acknowledgement: an ``Ack`` or a row of its columns."""

    @property
    def status(self) -> str: ...
    @property
    def note(self) -> str | None: ...
    @property
    def by_label(self) -> str: ...
    @property
    def at(self) -> datetime: ...


def render_ack(ack: RenderedAck, administration: str) -> dict[str, Any]:
    return _ack(administration, ack.status, ack.note, ack.by_label, ack.at)


def _ack(
    administration: str, status: str, note: str | None, by: str, at: datetime
) -> dict[str, Any]:
    return {
        "administration": administration,
        "status": status,
        "note": note,
        "by": by,
        "at": format_utc(at),
    }


async def acks_of(session: AsyncSession, alert_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The current acknowledgements of ``alert_ids``, rendered, oldest first, in one query
    (each with its administration's code)."""
    connection = await session.connection()  # plain rows: none of the ORM's result handling
    rows = await connection.execute(
        select(
            Ack.alert_id,
            Ack.status,
            Ack.note,
            Ack.by_label,
            Ack.at,
            ADMINISTRATION_OF_ACK.label("administration"),
        )
        .where(Ack.alert_id.in_(alert_ids))
        .order_by(Ack.at)
    )
    acks: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        acks.setdefault(row.alert_id, []).append(render_ack(row, row.administration))
    return acks


async def render_many(
    session: AsyncSession,
    alerts: Sequence[StoredAlert],
    *,
    operation_codes: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    """Render stored alerts with their codes and current acknowledgements, in three queries
    (two when the caller knows the ``operation_codes`` of them all)."""
    if not alerts:
        return []
    codes = await administration_codes(session)
    op_codes = dict(operation_codes or {})
    op_ids = {a.operation_id for a in alerts} - op_codes.keys()
    if op_ids:
        op_rows = await session.execute(
            select(Operation.id, Operation.code).where(Operation.id.in_(op_ids))
        )
        op_codes.update({id_: code for id_, code in op_rows})
    acks = await acks_of(session, [a.id for a in alerts])
    return [
        render(
            a,
            operation=op_codes[a.operation_id],
            reported_by=codes[a.reporter_id],
            acks=acks.get(a.id, []),
        )
        for a in alerts
    ]


@dataclass(slots=True)
class Listed:
    """A list page's alert and its current acknowledgements, rendered."""

    alert: ListedAlert
    acks: list[dict[str, Any]]


def listed(rows: Iterable[Any]) -> list[Listed]:
    """The alerts of a list page's rows (the alert's columns, its reporter's code and
    PAGE_ACK_COLUMNS), which hold an alert's rows together, its acks oldest first."""
    page: list[Listed] = []
    for row in rows:
        if not page or page[-1].alert.id != row.id:
            page.append(Listed(row, []))
        if row.ack_status is not None:  # never null in a stored ack
            page[-1].acks.append(
                _ack(row.ack_administration, row.ack_status, row.ack_note, row.ack_by, row.ack_at)
            )
    return page


def render_page(page: Sequence[Listed], *, operation: str) -> list[dict[str, Any]]:
    """Render a list page's alerts of ``operation``, read with their reporter's code and
    their acknowledgements."""
    return [
        render(p.alert, operation=operation, reported_by=p.alert.reported_by, acks=p.acks)
        for p in page
    ]
