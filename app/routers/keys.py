"""API keys and ``/v1/me``."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from app.deps import AdminCaller, CommitterDep, CurrentCaller, CursorDep, Limit, SessionDep
from app.routers.responses import json_response, page_response
from app.schemas.admin import KeyCreated, KeyIn, KeyOut, Me
from app.schemas.common import Page
from app.services import keys

router = APIRouter(prefix="/v1", tags=["keys"])

KeyId = Annotated[str, Path(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]


@router.get("/me", response_model=Me)
async def me(caller: CurrentCaller) -> Response:
    """Who the presented key is."""
    return json_response(
        Me(
            key_id=caller.key_id,
            administration=caller.administration,
            role=caller.role,
            label=caller.label,
        )
    )


@router.post("/keys", status_code=201, response_model=KeyCreated)
async def create_key(data: KeyIn, caller: AdminCaller, committer: CommitterDep) -> Response:
    """Mint a key; its token is shown in this response only."""
    created = await committer.run(partial(keys.create_key, caller=caller, data=data))
    return json_response(created, status=201)


@router.get("/keys", response_model=Page[KeyOut])
async def list_keys(
    _: AdminCaller, session: SessionDep, cursor: CursorDep, limit: Limit = 50
) -> Response:
    """Every key, without tokens."""
    items, next_cursor = await keys.list_keys(session, limit=limit, cursor=cursor)
    return page_response(items, next_cursor)


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: KeyId, caller: AdminCaller, committer: CommitterDep) -> Response:
    """Revoke a key; it stops working at once."""
    await committer.run(partial(keys.revoke_key, caller=caller, key_id=key_id))
    return Response(status_code=204)
