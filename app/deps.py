"""Dependencies, each declared once as an ``Annotated`` alias. Only this module and
``main.py`` touch ``app.state``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app.committer import Committer
from app.config import Settings
from app.db import Database
from app.errors import Forbidden, TooManyRequests, Unauthorized
from app.logs import key_id
from app.metrics import Metrics
from app.models.base import utcnow
from app.ratelimit import RateLimiter
from app.realtime.broker import Broker
from app.realtime.hub import Hub
from app.schemas.vocabulary import Role
from app.services import keys
from app.services.audit import AuditSink
from app.services.idempotency import InFlight
from app.services.keys import Caller, KeyCache
from app.services.pagination import Cursor
from app.services.stream import StreamContext


@dataclass(slots=True)
class Runtime:
    """Everything the lifespan builds, kept typed in ``app.state.runtime``."""

    settings: Settings
    db: Database
    committer: Committer
    audit: AuditSink
    in_flight: InFlight
    keys: KeyCache
    limiter: RateLimiter
    metrics: Metrics
    hub: Hub
    broker: Broker
    stream: StreamContext


async def get_runtime(connection: HTTPConnection) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def read_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.db.read_sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(read_session)]


async def get_committer(runtime: RuntimeDep) -> Committer:
    return runtime.committer


async def get_audit(runtime: RuntimeDep) -> AuditSink:
    return runtime.audit


async def get_in_flight(runtime: RuntimeDep) -> InFlight:
    return runtime.in_flight


CommitterDep = Annotated[Committer, Depends(get_committer)]
AuditDep = Annotated[AuditSink, Depends(get_audit)]
InFlightDep = Annotated[InFlight, Depends(get_in_flight)]


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


async def current_caller(
    runtime: RuntimeDep,
    session: SessionDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    caller = await keys.authenticate(session, token=bearer_token(authorization), now=utcnow())
    key_id.set(caller.key_id)
    wait = runtime.limiter.retry_after(caller.key_id)
    if wait is not None:
        raise TooManyRequests(wait)
    return caller


def require(*roles: Role) -> Callable[[Caller], Coroutine[Any, Any, Caller]]:
    async def check(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if caller.role not in roles:
            raise Forbidden(f"This needs the {' or '.join(r.value for r in roles)} role")
        return caller

    return check


CurrentCaller = Annotated[Caller, Depends(current_caller)]
MEMBER_ROLES = (Role.member, Role.analyst)  # who acts for an administration
AdminCaller = Annotated[Caller, Depends(require(Role.admin))]
MemberCaller = Annotated[Caller, Depends(require(*MEMBER_ROLES))]
AnalystCaller = Annotated[Caller, Depends(require(Role.analyst))]


async def cursor_param(
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Cursor | None:
    return Cursor.decode(cursor)


Limit = Annotated[int, Query(ge=1, le=500, description="Page size, 1..500")]
CursorDep = Annotated[Cursor | None, Depends(cursor_param)]
