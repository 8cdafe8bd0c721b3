"""Acknowledgements and comments on alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from app.deps import CommitterDep, MemberCaller, SessionDep
from app.routers.alerts import AlertId
from app.routers.responses import json_response, page_response
from app.schemas.alert import AckIn, AckOut, CommentIn, CommentOut
from app.schemas.common import Page
from app.schemas.query import PageQuery
from app.services import followups
from app.services.pagination import Cursor

router = APIRouter(prefix="/v1/alerts/{alert_id}", tags=["follow-up"])


@router.post("/acks", status_code=201, response_model=AckOut)
async def acknowledge(
    alert_id: AlertId, data: AckIn, caller: MemberCaller, committer: CommitterDep
) -> Response:
    """Set the caller's administration's status on the alert; it supersedes the previous one."""
    ack = await followups.acknowledge(committer, caller=caller, alert_id=alert_id, data=data)
    return json_response(ack, status=201)


@router.post("/comments", status_code=201, response_model=CommentOut)
async def add_comment(
    alert_id: AlertId, data: CommentIn, caller: MemberCaller, committer: CommitterDep
) -> Response:
    """Comment on the alert."""
    comment = await followups.add_comment(committer, caller=caller, alert_id=alert_id, data=data)
    return json_response(comment, status=201)


@router.get("/comments", response_model=Page[CommentOut])
async def list_comments(
    alert_id: AlertId,
    query: Annotated[PageQuery, Query()],
    caller: MemberCaller,
    session: SessionDep,
) -> Response:
    """The alert's comments, oldest first."""
    items, next_cursor = await followups.list_comments(
        session,
        caller=caller,
        alert_id=alert_id,
        limit=query.limit,
        cursor=Cursor.decode(query.cursor),
    )
    return page_response(items, next_cursor)
