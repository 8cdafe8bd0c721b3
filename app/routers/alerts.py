"""Reporting, listing, reading, amending and withdrawing alerts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from starlette.responses import Response

from app.deps import AuditDep, CommitterDep, InFlightDep, MemberCaller, SessionDep
from app.errors import NotFound
from app.routers.responses import json_response, page_response, stored_response
from app.schemas.alert import AlertBody, AlertOut, WithdrawIn
from app.schemas.common import Page
from app.schemas.query import AlertListQuery
from app.schemas.types import CODE_PATTERN
from app.services import alerts, search
from app.services.pagination import Cursor

router = APIRouter(prefix="/v1", tags=["alerts"])

OperationCode = Annotated[str, Path(pattern=CODE_PATTERN)]
ULID_CHARS = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


async def alert_id_param(alert_id: Annotated[str, Path()]) -> str:
    """An alert id; anything that cannot be one is simply not found."""
    if len(alert_id) != 26 or not set(alert_id) <= ULID_CHARS:
        raise NotFound("No alert with this id")
    return alert_id


AlertId = Annotated[str, Depends(alert_id_param)]


async def raw_json(request: Request) -> Any:
    """The body as parsed JSON, to compare idempotent retries; parsed only when an
    Idempotency-Key asks for it (None when it is not JSON: validation answers that)."""
    if "idempotency-key" not in request.headers:
        return None
    try:
        return await request.json()
    except ValueError:
        return None


@router.post(
    "/operations/{code}/alerts",
    status_code=201,
    response_model=AlertOut,
    responses={409: {"description": "Operation closed, or the same Idempotency-Key in flight"}},
)
async def report_alert(
    code: OperationCode,
    body: AlertBody,
    caller: MemberCaller,
    committer: CommitterDep,
    in_flight: InFlightDep,
    raw: Annotated[Any, Depends(raw_json)],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Report a seizure, pre-alert, request or notice; 201 once durably committed."""
    stored = await alerts.report_alert(
        committer,
        in_flight,
        caller=caller,
        operation_code=code,
        body=body,
        raw_body=raw,
        idempotency_key=idempotency_key,
    )
    return stored_response(stored)


@router.get("/operations/{code}/alerts", response_model=Page[AlertOut])
async def list_alerts(
    code: OperationCode,
    query: Annotated[AlertListQuery, Query()],
    caller: MemberCaller,
    session: SessionDep,
    sink: AuditDep,
) -> Response:
    """The operation's alerts the caller may see, filtered, newest first by default."""
    items, next_cursor = await search.list_alerts(
        session,
        sink,
        caller=caller,
        operation_code=code,
        where=search.AlertFilter.of(query),
        sort=query.sort,
        limit=query.limit,
        cursor=Cursor.decode(query.cursor),
    )
    return page_response(items, next_cursor)


@router.get("/alerts/{alert_id}", response_model=AlertOut)
async def get_alert(
    alert_id: AlertId, caller: MemberCaller, session: SessionDep, sink: AuditDep
) -> Response:
    """One alert, with its ETag (404 if the caller may not see it)."""
    rendered = await alerts.get_alert(session, sink, caller=caller, alert_id=alert_id)
    return json_response(rendered.body, headers={"ETag": rendered.etag})


@router.patch("/alerts/{alert_id}", response_model=AlertOut)
async def amend_alert(
    alert_id: AlertId,
    patch: Annotated[dict[str, Any], Body(description="JSON merge patch (RFC 7396)")],
    caller: MemberCaller,
    committer: CommitterDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Amend the caller's administration's alert; answers the new revision."""
    rendered = await alerts.amend_alert(
        committer, caller=caller, alert_id=alert_id, patch=patch, if_match=if_match
    )
    return json_response(rendered.body, headers={"ETag": rendered.etag})


@router.post("/alerts/{alert_id}/withdraw", response_model=AlertOut)
async def withdraw_alert(
    alert_id: AlertId, data: WithdrawIn, caller: MemberCaller, committer: CommitterDep
) -> Response:
    """Withdraw the caller's administration's alert."""
    rendered = await alerts.withdraw_alert(
        committer, caller=caller, alert_id=alert_id, reason=data.reason
    )
    return json_response(rendered.body, headers={"ETag": rendered.etag})
