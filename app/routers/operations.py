"""Operations and their participants."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from app.deps import AdminCaller, CommitterDep, CurrentCaller, CursorDep, Limit, SessionDep
from app.routers.responses import json_response, page_response
from app.schemas.admin import OperationIn, OperationOut, ParticipantIn
from app.schemas.common import Page
from app.schemas.types import CODE_PATTERN
from app.services import operations

router = APIRouter(prefix="/v1/operations", tags=["operations"])

OperationCode = Annotated[str, Path(pattern=CODE_PATTERN)]
AdministrationCode = Annotated[str, Path(pattern=CODE_PATTERN)]


@router.post("", status_code=201, response_model=OperationOut)
async def create_operation(data: OperationIn, _: AdminCaller, committer: CommitterDep) -> Response:
    """Create an operation with its coordinator and participants."""
    created = await committer.run(partial(operations.create_operation, data=data))
    return json_response(
        created, status=201, headers={"Location": f"/v1/operations/{created.code}"}
    )


@router.get("", response_model=Page[OperationOut])
async def list_operations(
    caller: CurrentCaller, session: SessionDep, cursor: CursorDep, limit: Limit = 50
) -> Response:
    """Admins see every operation; others those they coordinate or take part in."""
    items, next_cursor = await operations.list_operations(
        session, caller=caller, limit=limit, cursor=cursor
    )
    return page_response(items, next_cursor)


@router.get("/{code}", response_model=OperationOut)
async def get_operation(
    code: OperationCode, caller: CurrentCaller, session: SessionDep
) -> Response:
    """One operation (404 if the caller takes no part in it)."""
    op = await operations.open_operation(session, caller=caller, code=code)
    return json_response(operations.operation_out(op))


@router.post("/{code}/participants", status_code=201, response_model=OperationOut)
async def add_participant(
    code: OperationCode, data: ParticipantIn, _: AdminCaller, committer: CommitterDep
) -> Response:
    """Add a participating administration."""
    op = await committer.run(
        partial(operations.add_participant, code=code, administration=data.administration)
    )
    return json_response(op, status=201)


@router.delete("/{code}/participants/{administration}", status_code=204)
async def remove_participant(
    code: OperationCode, administration: AdministrationCode, _: AdminCaller, committer: CommitterDep
) -> Response:
    """Remove a participant; it keeps seeing only the alerts it reported itself."""
    await committer.run(
        partial(operations.remove_participant, code=code, administration=administration)
    )
    return Response(status_code=204)


@router.post("/{code}/close", response_model=OperationOut)
async def close_operation(code: OperationCode, _: AdminCaller, committer: CommitterDep) -> Response:
    """Close: no new alerts (409), everything stays readable."""
    op = await committer.run(partial(operations.close_operation, code=code))
    return json_response(op)
