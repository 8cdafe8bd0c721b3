"""Liveness, readiness and metrics (API.md section 11); no authentication."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from app.deps import RuntimeDep
from app.errors import ServiceUnavailable
from app.routers.responses import json_response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Response:
    """The process runs."""
    return json_response({"status": "ok"})


@router.get("/readyz", responses={503: {"description": "The store does not answer"}})
async def readyz(runtime: RuntimeDep) -> Response:
    """The store (and the broker, when one is set) answer."""
    try:
        await runtime.db.ping()
    except Exception:
        raise ServiceUnavailable("The database does not answer") from None
    try:
        await runtime.broker.ping()
    except Exception:
        raise ServiceUnavailable("The broker does not answer") from None
    return json_response({"status": "ready"})


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
