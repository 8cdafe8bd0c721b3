"""Query-string models: unknown parameters are refused, so a misspelt filter never
silently widens a result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.types import Code, Territory, UtcDatetime, text
from app.schemas.vocabulary import (
    AlertStatus,
    Commodity,
    ConcealmentMethod,
    DetectionMethod,
    Kind,
    Priority,
    TransportMode,
)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=2000)


class AlertFilters(BaseModel):
    """The filters of the list endpoint, shared with export."""

    model_config = ConfigDict(extra="forbid")

    kind: list[Kind] = Field(default_factory=list)
    priority: list[Priority] = Field(default_factory=list)
    commodity: list[Commodity] = Field(default_factory=list)
    transport_mode: list[TransportMode] = Field(default_factory=list)
    concealment_method: list[ConcealmentMethod] = Field(default_factory=list)
    detection_method: list[DetectionMethod] = Field(default_factory=list)
    reported_by: Code | None = None
    territory: Territory | None = None
    origin: Territory | None = None
    destination: Territory | None = None
    occurred_from: UtcDatetime | None = None
    occurred_to: UtcDatetime | None = None
    identifier: text(1, 200) | None = None  # type: ignore[valid-type]
    q: text(1, 500) | None = None  # type: ignore[valid-type]
    status: AlertStatus | None = None


class AlertListQuery(AlertFilters, PageQuery):
    sort: Literal["-occurred_at", "occurred_at", "-seq", "seq"] = "-occurred_at"


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: int = Field(default=0, ge=0, le=2**62)
    operation: Code | None = None
    limit: int = Field(default=50, ge=1, le=500)


class AuditQuery(PageQuery):
    key_id: text(1, 26) | None = None  # type: ignore[valid-type]
    administration: Code | None = None
    action: text(1, 32) | None = None  # type: ignore[valid-type]
    from_: UtcDatetime | None = Field(default=None, alias="from")
    to: UtcDatetime | None = None
