"""How a stored alert reads (API.md section 5): its document with what the server adds,
its codes and its current acknowledgements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.jsonenc import loads
from app.models import Ack, Operation
from app.schemas.types import format_utc
from app.services.administrations import administration_codes


class StoredAlert(Protocol):
    """What rendering reads of a stored alert: an ``Alert`` or a row of its columns (list
    pages read rows, which cost a fraction of loading ORM objects)."""

    @property
    def id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def operation_id(self) -> int: ...
    @property
    def reporter_id(self) -> int: ...
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
    def occurred_at(self) -> datetime: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


def render(
    alert: StoredAlert,
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


def render_ack(ack: Ack, administration: str) -> dict[str, Any]:
    return {
        "administration": administration,
        "status": ack.status,
        "note": ack.note,
        "by": ack.by_label,
        "at": format_utc(ack.at),
    }


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
    acks: dict[str, list[dict[str, Any]]] = {}
    ack_rows = await session.execute(
        select(Ack).where(Ack.alert_id.in_([a.id for a in alerts])).order_by(Ack.at)
    )
    for ack in ack_rows.scalars():
        acks.setdefault(ack.alert_id, []).append(render_ack(ack, codes[ack.administration_id]))
    return [
        render(
            a,
            operation=op_codes[a.operation_id],
            reported_by=codes[a.reporter_id],
            acks=acks.get(a.id, []),
        )
        for a in alerts
    ]
