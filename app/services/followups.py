"""Acknowledgements and comments: follow-up that outlives withdrawal and closing."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from app.committer import Committer, WriteTx
from app.models import Ack, Administration, Comment, Operation
from app.models.base import utcnow
from app.schemas.alert import AckIn, CommentIn
from app.schemas.types import format_utc
from app.services import events
from app.services.alerts import visible_alert
from app.services.keys import Caller
from app.services.pagination import Cursor, page_of
from app.services.rendering import render_ack


async def _operation(session: AsyncSession, operation_id: int) -> tuple[int, str]:
    op = await session.get_one(Operation, operation_id)
    return op.id, op.code


async def _acknowledge(
    tx: WriteTx, *, caller: Caller, alert_id: str, data: AckIn
) -> dict[str, Any]:
    assert caller.administration_id is not None and caller.administration is not None
    alert = await visible_alert(tx.session, caller=caller, alert_id=alert_id)
    ack = await tx.session.get(Ack, (alert.id, caller.administration_id))
    if ack is None:
        ack = Ack(alert_id=alert.id, administration_id=caller.administration_id)
        tx.session.add(ack)
    ack.status = data.status.value
    ack.note = data.note
    ack.by_label = caller.label
    ack.at = utcnow()
    await tx.session.flush()
    rendered = render_ack(ack, caller.administration)
    events.append(
        tx,
        type="alert.acknowledged",
        operation=await _operation(tx.session, alert.operation_id),
        alert_id=alert.id,
        body={"alert_id": alert.id, "ack": rendered},
        facts=await events.stored_facts(tx.session, alert),
    )
    return rendered


async def acknowledge(
    committer: Committer, *, caller: Caller, alert_id: str, data: AckIn
) -> dict[str, Any]:
    """Set the caller's administration's current status on an alert."""
    return await committer.run(partial(_acknowledge, caller=caller, alert_id=alert_id, data=data))


def render_comment(comment: Comment, administration: str) -> dict[str, Any]:
    return {
        "id": comment.id,
        "alert_id": comment.alert_id,
        "administration": administration,
        "by": comment.by_label,
        "body": comment.body,
        "created_at": format_utc(comment.created_at),
    }


async def _comment(
    tx: WriteTx, *, caller: Caller, alert_id: str, data: CommentIn
) -> dict[str, Any]:
    assert caller.administration_id is not None and caller.administration is not None
    alert = await visible_alert(tx.session, caller=caller, alert_id=alert_id)
    comment = Comment(
        id=str(ULID()),
        alert_id=alert.id,
        administration_id=caller.administration_id,
        by_label=caller.label,
        body=data.body,
        created_at=utcnow(),
    )
    tx.session.add(comment)
    rendered = render_comment(comment, caller.administration)
    events.append(
        tx,
        type="comment.created",
        operation=await _operation(tx.session, alert.operation_id),
        alert_id=alert.id,
        body={"alert_id": alert.id, "comment": rendered},
        facts=await events.stored_facts(tx.session, alert),
    )
    return rendered


async def add_comment(
    committer: Committer, *, caller: Caller, alert_id: str, data: CommentIn
) -> dict[str, Any]:
    return await committer.run(partial(_comment, caller=caller, alert_id=alert_id, data=data))


async def list_comments(
    session: AsyncSession, *, caller: Caller, alert_id: str, limit: int, cursor: Cursor | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Oldest first."""
    alert = await visible_alert(session, caller=caller, alert_id=alert_id)
    query = (
        select(Comment, Administration.code)
        .join(Administration, Administration.id == Comment.administration_id)
        .where(Comment.alert_id == alert.id)
        .order_by(Comment.id)
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(Comment.id > cursor.string("id"))
    rows = (await session.execute(query)).all()
    items, next_cursor = page_of(rows, limit, lambda row: {"id": row[0].id})
    return [render_comment(comment, code) for comment, code in items], next_cursor
