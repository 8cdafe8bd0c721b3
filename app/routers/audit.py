"""The audit trail (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from app.deps import AdminCaller, SessionDep
from app.routers.responses import page_response
from app.schemas.query import AuditQuery
from app.services import audit
from app.services.pagination import Cursor

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit")
async def read_audit(
    query: Annotated[AuditQuery, Query()], _: AdminCaller, session: SessionDep
) -> Response:
    """Audit records, newest first."""
    where = audit.AuditFilter(
        key_id=query.key_id,
        administration=query.administration,
        action=query.action,
        from_=query.from_,
        to=query.to,
    )
    items, next_cursor = await audit.list_records(
        session, where=where, limit=query.limit, cursor=Cursor.decode(query.cursor)
    )
    return page_response(items, next_cursor)
