"""The OCU's analysis: statistics and exports (analyst keys)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response, StreamingResponse

from app.deps import AnalystCaller, AuditDep, RuntimeDep, SessionDep
from app.routers.responses import json_response
from app.schemas.query import AlertFilters
from app.schemas.types import CODE_PATTERN
from app.services import export, stats
from app.services.search import AlertFilter

router = APIRouter(prefix="/v1/operations/{code}", tags=["analysis"])

OperationCode = Annotated[str, Path(pattern=CODE_PATTERN)]


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: stats.Dimension


class FigureSet(BaseModel):
    alerts: int
    seizures: int
    mass_kg: float
    volume_l: float
    tablets: float
    pieces: float


class Group(FigureSet):
    key: str | None


class StatsOut(BaseModel):
    operation: str
    by: str
    groups: list[Group]
    total: FigureSet


class ExportQuery(AlertFilters):
    format: Literal["csv", "ndjson"] = "csv"


MEDIA = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


@router.get("/stats", response_model=StatsOut)
async def operation_stats(
    code: OperationCode,
    query: Annotated[StatsQuery, Query()],
    caller: AnalystCaller,
    session: SessionDep,
    sink: AuditDep,
) -> Response:
    """Counts and quantities by one dimension, over the caller's visible, open alerts."""
    figures = await stats.operation_stats(
        session, sink, caller=caller, operation_code=code, by=query.by
    )
    return json_response(figures)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {MEDIA["csv"]: {}, MEDIA["ndjson"]: {}}}},
)
async def export_alerts(
    code: OperationCode,
    query: Annotated[ExportQuery, Query()],
    caller: AnalystCaller,
    runtime: RuntimeDep,
) -> StreamingResponse:
    """One row per item of every visible alert, streamed; the list's filters apply."""
    operation, chunks = await export.start_export(
        runtime.db,
        runtime.audit,
        caller=caller,
        operation_code=code,
        where=AlertFilter.of(query),
        fmt=query.format,
    )
    filename = f"{operation}-alerts.{query.format}"
    return StreamingResponse(
        chunks,
        media_type=MEDIA[query.format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
