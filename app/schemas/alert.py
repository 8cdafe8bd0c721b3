"""The alert body of API.md section 5, and what the server adds to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, model_validator
from pydantic import StringConstraints as Str

from app.schemas.types import Code, OutDatetime, Territory, UtcDatetime, text
from app.schemas.vocabulary import (
    AckStatus,
    AlertStatus,
    Commodity,
    ConcealmentMethod,
    DetectionMethod,
    Form,
    IdentifierType,
    Kind,
    Priority,
    Tlp,
    TransportMode,
    Unit,
)

FUTURE_TOLERANCE = timedelta(minutes=5)


class StrictModel(BaseModel):
    """Unknown fields are refused: a misspelt field must not be dropped silently."""

    model_config = ConfigDict(extra="forbid")


class Location(StrictModel):
    territory: Territory
    place: text(0, 200) | None = None  # type: ignore[valid-type]
    unlocode: Annotated[str, Strict(), Str(pattern=r"^[A-Z]{2}[A-Z2-9]{3}$")] | None = None


class Route(StrictModel):
    origin: Territory | None = None
    transit: list[Territory] = Field(default_factory=list, max_length=20)
    destination: Territory | None = None

    def territories(self) -> set[str]:
        return {t for t in (self.origin, self.destination, *self.transit) if t is not None}


class Item(StrictModel):
    commodity: Commodity
    form: Form | None = None
    quantity: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, le=1e12)]
    unit: Unit


class Identifier(StrictModel):
    type: IdentifierType
    value: text(1, 200)  # type: ignore[valid-type]


class Offenders(StrictModel):
    count: Annotated[int, Strict(), Field(ge=0, le=100_000)] = 0
    nationalities: list[Territory] = Field(default_factory=list, max_length=100)


class OperationAudience(StrictModel):
    scope: Literal["operation"]


class RestrictedAudience(StrictModel):
    scope: Literal["restricted"]
    recipients: list[Code] = Field(default_factory=list, max_length=200)


Audience = Annotated[OperationAudience | RestrictedAudience, Field(discriminator="scope")]


class AlertBody(StrictModel):
    """What a member system sends; also the shape a merge patch must produce."""

    kind: Kind
    priority: Priority = Priority.routine
    occurred_at: UtcDatetime
    location: Location
    transport_mode: TransportMode | None = None
    route: Route | None = None
    items: list[Item] = Field(default_factory=list, max_length=200)
    concealment_methods: list[ConcealmentMethod] = Field(default_factory=list, max_length=15)
    concealment: text(0, 2000) | None = None  # type: ignore[valid-type]
    detection_method: DetectionMethod | None = None
    identifiers: list[Identifier] = Field(default_factory=list, max_length=200)
    offenders: Offenders | None = None
    tlp: Tlp = Tlp.amber
    summary: text(1, 300)  # type: ignore[valid-type]
    narrative: text(0, 20_000) | None = None  # type: ignore[valid-type]
    reference: text(0, 100) | None = None  # type: ignore[valid-type]
    audience: Audience = Field(default_factory=lambda: OperationAudience(scope="operation"))

    @model_validator(mode="after")
    def _kind_rules(self) -> AlertBody:
        if self.occurred_at > datetime.now(UTC) + FUTURE_TOLERANCE:
            raise ValueError("occurred_at may not lie more than 5 minutes in the future")
        if self.kind is Kind.seizure:
            if not self.items:
                raise ValueError("a seizure needs at least one item")
            if self.transport_mode is None:
                raise ValueError("a seizure needs a transport_mode")
        if self.kind is Kind.pre_alert and (self.route is None or self.route.destination is None):
            raise ValueError("a pre_alert needs route.destination")
        # Duplicates carry no meaning; keep the first of each.
        self.concealment_methods = list(dict.fromkeys(self.concealment_methods))
        if isinstance(self.audience, RestrictedAudience):
            self.audience.recipients = list(dict.fromkeys(self.audience.recipients))
        return self

    def document(self) -> dict[str, Any]:
        """The stored form: JSON-ready, every field present."""
        return self.model_dump(mode="json")


class AckIn(StrictModel):
    status: AckStatus
    note: text(0, 2000) | None = None  # type: ignore[valid-type]


class AckOut(BaseModel):
    administration: str
    status: AckStatus
    note: str | None
    by: str
    at: OutDatetime


class CommentIn(StrictModel):
    body: text(1, 10_000)  # type: ignore[valid-type]


class CommentOut(BaseModel):
    id: str
    alert_id: str
    administration: str
    by: str
    body: str
    created_at: OutDatetime


class WithdrawIn(StrictModel):
    reason: text(1, 2000)  # type: ignore[valid-type]


class AlertOut(BaseModel):
    """The stored alert as every reader receives it (documentation model; built as a dict)."""

    id: str
    operation: str
    seq: int
    revision: int
    kind: Kind
    priority: Priority
    occurred_at: str
    location: Location
    transport_mode: TransportMode | None
    route: Route | None
    items: list[Item]
    concealment_methods: list[ConcealmentMethod]
    concealment: str | None
    detection_method: DetectionMethod | None
    identifiers: list[Identifier]
    offenders: Offenders | None
    tlp: Tlp
    summary: str
    narrative: str | None
    reference: str | None
    audience: OperationAudience | RestrictedAudience
    reported_by: str
    reported_by_key: str
    created_at: str
    updated_at: str
    status: AlertStatus
    withdrawn_reason: str | None = None
    acks: list[AckOut]
