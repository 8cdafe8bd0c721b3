"""Administrations (admin)."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter
from starlette.responses import Response

from app.deps import AdminCaller, CommitterDep, CursorDep, Limit, SessionDep
from app.routers.responses import json_response, page_response
from app.schemas.admin import AdministrationIn, AdministrationOut
from app.schemas.common import Page
from app.services import administrations

router = APIRouter(prefix="/v1/administrations", tags=["administration"])


@router.post("", status_code=201, response_model=AdministrationOut)
async def create_administration(
    data: AdministrationIn, _: AdminCaller, committer: CommitterDep
) -> Response:
    """Register a customs administration; 409 if the code exists."""
    created = await committer.run(partial(administrations.create_administration, data=data))
    return json_response(created, status=201)


@router.get("", response_model=Page[AdministrationOut])
async def list_administrations(
    _: AdminCaller, session: SessionDep, cursor: CursorDep, limit: Limit = 50
) -> Response:
    """All administrations, by code."""
    items, next_cursor = await administrations.list_administrations(
        session, limit=limit, cursor=cursor
    )
    return page_response(items, next_cursor)
