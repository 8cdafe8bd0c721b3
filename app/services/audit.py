"""The audit trail of API.md section 9.

Writes record their audit row inside their own transaction. Reads (which must not
each cost a commit) are buffered by ``AuditSink`` and flushed through the committer
every ``interval`` seconds and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.committer import Committer, WriteTx
from app.jsonenc import dumps, loads
from app.models import AuditRecord
from app.models.base import utcnow
from app.schemas.types import format_utc
from app.services.pagination import Cursor, page_of

if TYPE_CHECKING:
    from app.services.keys import Caller

log = logging.getLogger("relay.audit")


AUDIT: Table = AuditRecord.__table__  # type: ignore[assignment]


def _row(
    caller: Caller | None,
    action: str,
    *,
    operation: str | None = None,
    alert_ids: Sequence[str] | None = None,
    query: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An ``audit_record`` row (its columns but the id)."""
    return {
        "at": utcnow(),
        "key_id": caller.key_id if caller else None,
        "administration": caller.administration if caller else None,
        "action": action,
        "operation": operation,
        "alert_ids": dumps(list(alert_ids)).decode() if alert_ids is not None else None,
        "query": dumps(query).decode() if query is not None else None,
    }


def record_in(
    tx: WriteTx,
    *,
    caller: Caller | None,
    action: str,
    operation: str | None = None,
    alert_ids: Sequence[str] | None = None,
    query: dict[str, Any] | None = None,
) -> None:
    """Audit a write in the write's own transaction."""
    row = _row(caller, action, operation=operation, alert_ids=alert_ids, query=query)
    tx.stage(AUDIT, row)


class AuditSink:
    """Buffers read audits and flushes them in the background."""

    def __init__(self, committer: Committer, *, interval: float) -> None:
        self._committer = committer
        self._interval = interval
        self._buffer: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def record(
        self,
        *,
        caller: Caller,
        action: str,
        operation: str | None = None,
        alert_ids: Sequence[str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> None:
        self._buffer.append(
            _row(caller, action, operation=operation, alert_ids=alert_ids, query=query)
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-sink")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        records, self._buffer = self._buffer, []
        if not records:
            return

        async def write(tx: WriteTx) -> None:
            # In the job's own savepoint, not staged with the batch's other rows: a
            # record the store refused would fail only this flush, never a report.
            await tx.session.execute(insert(AUDIT), records)

        try:
            await self._committer.run(write)
        except Exception:
            # Keep them for the next try rather than lose them while the store is away.
            log.warning("audit flush failed; %d records kept for retry", len(records))
            self._buffer[:0] = records

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()


@dataclass(frozen=True, slots=True)
class AuditFilter:
    key_id: str | None = None
    administration: str | None = None
    action: str | None = None
    from_: datetime | None = None
    to: datetime | None = None


async def list_records(
    session: AsyncSession, *, where: AuditFilter, limit: int, cursor: Cursor | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first."""
    query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit + 1)
    if where.key_id is not None:
        query = query.where(AuditRecord.key_id == where.key_id)
    if where.administration is not None:
        query = query.where(AuditRecord.administration == where.administration)
    if where.action is not None:
        query = query.where(AuditRecord.action == where.action)
    if where.from_ is not None:
        query = query.where(AuditRecord.at >= where.from_)
    if where.to is not None:
        query = query.where(AuditRecord.at < where.to)
    if cursor is not None:
        query = query.where(AuditRecord.id < cursor.integer("id"))
    rows = list((await session.execute(query)).scalars())
    items, next_cursor = page_of(rows, limit, lambda r: {"id": r.id})
    return [_render(r) for r in items], next_cursor


def _render(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": format_utc(record.at),
        "key_id": record.key_id,
        "administration": record.administration,
        "action": record.action,
        "operation": record.operation,
        "alert_ids": loads(record.alert_ids) if record.alert_ids else None,
        "query": loads(record.query) if record.query else None,
    }
