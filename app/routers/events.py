"""The pull feed of the event log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.responses import Response

from app.deps import AuditDep, MemberCaller, SessionDep
from app.routers.responses import json_response
from app.schemas.query import EventsQuery
from app.services import events

router = APIRouter(prefix="/v1", tags=["events"])


class EventPage(BaseModel):
    items: list[dict[str, object]]
    next_since: int


@router.get("/events", response_model=EventPage)
async def read_events(
    query: Annotated[EventsQuery, Query()],
    caller: MemberCaller,
    session: SessionDep,
    sink: AuditDep,
) -> Response:
    """Visible events with ``seq > since``, oldest first; resume from ``next_since``."""
    body = await events.read_events(
        session,
        sink,
        caller=caller,
        since=query.since,
        operation_code=query.operation,
        limit=query.limit,
    )
    return json_response(body)
