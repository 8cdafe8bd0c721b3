"""``POST /v1/operations/{code}/alerts`` on its hot path, below FastAPI's dependency solving.

Reporting is the one endpoint member systems call in bulk, and FastAPI's machinery (a
dozen dependencies solved per request) cost about a quarter of the server's time per
report (docs/benchmarks.md). ``ReportFastPath`` answers a well-formed report from a key
that may make it exactly as the route in ``app/routers/alerts.py`` would, calling the same
services in the same order; anything else (a bad token, a body that does not validate, a
role without the right, an odd path) is handed to that route untouched, which answers it
the canonical way. The route stays the contract's description (OpenAPI) and the fallback.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.deps import MEMBER_ROLES, Runtime, bearer_token
from app.errors import AppError, TooManyRequests, Unauthorized, problem_response
from app.logs import key_id
from app.middleware import replaying
from app.models.base import utcnow
from app.routers.responses import stored_response
from app.schemas.alert import AlertBody
from app.schemas.types import CODE_PATTERN
from app.services import alerts

# The route's path, its operation code as the route's pattern has it.
REPORT_PATH = re.compile(rf"^/v1/operations/({CODE_PATTERN.strip('^$')})/alerts$")


class ReportFastPath:
    """ASGI middleware (inside ``RequestGuard``, which has read and screened the body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST":
            match = REPORT_PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        body = await _whole_body(receive)
        if not await self._answer(scope, send, match.group(1), body):
            await self.app(scope, replaying(body, receive), send)

    async def _answer(self, scope: Scope, send: Send, code: str, body: bytes) -> bool:
        """Answer the report if it is one the route would accept up to its service call;
        False (having sent nothing) to leave it to the route."""
        runtime: Runtime = scope["app"].state.runtime
        headers = Headers(scope=scope)
        try:
            report = AlertBody.model_validate_json(body)
            token = bearer_token(headers.get("authorization"))
            caller = await runtime.keys.authenticate(
                runtime.db.read_engine, token=token, now=utcnow()
            )
        except (ValidationError, AppError):
            return False
        if caller.role not in MEMBER_ROLES:
            return False
        key_id.set(caller.key_id)
        scope["route"] = self._report_route(scope)
        wait = runtime.limiter.retry_after(caller.key_id)
        if wait is not None:
            await self._refuse(scope, send, runtime, token, TooManyRequests(wait))
            return True
        idempotency_key = headers.get("idempotency-key")
        raw = None if idempotency_key is None else json.loads(body)  # it validated as JSON
        try:
            stored = await alerts.report_alert(
                runtime.committer,
                runtime.in_flight,
                caller=caller,
                operation_code=code,
                body=report,
                raw_body=raw,
                idempotency_key=idempotency_key,
            )
        except AppError as error:
            await self._refuse(scope, send, runtime, token, error)
            return True
        await stored_response(stored)(scope, _nothing, send)
        return True

    async def _refuse(
        self, scope: Scope, send: Send, runtime: Runtime, token: str, error: AppError
    ) -> None:
        """Answer ``error``, unless the key (known from memory) is no longer live: then 401,
        which API.md section 2 gives a revoked or expired key before anything else."""
        if not isinstance(error, Unauthorized):
            try:
                await runtime.keys.confirm(runtime.db.read_engine, token=token, now=utcnow())
            except Unauthorized as refused:
                error = refused
        if isinstance(error, Unauthorized):
            runtime.keys.forget(token)
        await problem_response(error)(scope, _nothing, send)

    def _report_route(self, scope: Scope) -> Any:
        """The route this path stands in for, so that metrics and logs name it alike."""
        if self._route is None:
            for route in scope["app"].routes:
                if getattr(route, "path", None) == "/v1/operations/{code}/alerts" and "POST" in (
                    getattr(route, "methods", None) or ()
                ):
                    self._route = route
        return self._route


async def _whole_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _nothing() -> Message:  # pragma: no cover - responses do not read the request
    return {"type": "http.disconnect"}
