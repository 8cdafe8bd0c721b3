"""The frames of the websocket stream (API.md section 8). The server builds its frames
from these models (event frames are spliced from pre-encoded payloads in the same
shape), and /asyncapi.json is generated from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from app.schemas.types import Code, Territory
from app.schemas.vocabulary import Commodity, Kind, Priority, Role, TransportMode


class Frame(BaseModel):
    def encode(self) -> str:
        return self.model_dump_json()


# --- client to server --------------------------------------------------------------------


class AuthFrame(Frame):
    """First frame from a browser, within 10 s, when no Authorization header was sent."""

    type: Literal["auth"]
    token: str


class StreamFilterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: list[Kind] = Field(default_factory=list)
    priority: list[Priority] = Field(default_factory=list)
    commodity: list[Commodity] = Field(default_factory=list)
    transport_mode: list[TransportMode] = Field(default_factory=list)
    territory: list[Territory] = Field(default_factory=list)


class SubscribeFrame(Frame):
    """Subscribe to an operation's visible events, replaying those after ``since``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["subscribe"]
    id: str = Field(min_length=1, max_length=64)
    operation: Code
    since: Annotated[int, Strict()] | None = Field(
        default=None, ge=0, description="Omit for live events only"
    )
    filter: StreamFilterIn | None = None


class UnsubscribeFrame(Frame):
    type: Literal["unsubscribe"]
    id: str


class PingFrame(Frame):
    type: Literal["ping"]


# --- server to client --------------------------------------------------------------------


class WelcomeFrame(Frame):
    type: Literal["welcome"] = "welcome"
    administration: str
    role: Role
    head: int = Field(description="The newest seq of the event log")
    epoch: str = Field(description="Names this event log; a since from another epoch is void")


class SubscribedFrame(Frame):
    type: Literal["subscribed"] = "subscribed"
    id: str
    head: int
    recovered: bool = Field(
        description="False when events after `since` are no longer kept: reload from the "
        "history API (no partial replay is sent)"
    )


class UnsubscribedFrame(Frame):
    type: Literal["unsubscribed"] = "unsubscribed"
    id: str


class EventFrame(Frame):
    """One event of the log (API.md section 7), for subscription ``sub``."""

    type: Literal["event"] = "event"
    sub: str
    event: dict[str, Any] = Field(
        description="seq, type, operation, at, and alert | alert_id with ack or comment"
    )


class ErrorFrame(Frame):
    type: Literal["error"] = "error"
    id: str | None = Field(default=None, description="The subscription concerned, if any")
    status: int = Field(description="400 malformed, 403, 404 unknown operation, 422 invalid")
    detail: str


class PongFrame(Frame):
    type: Literal["pong"] = "pong"


CLIENT_FRAMES: tuple[type[Frame], ...] = (AuthFrame, SubscribeFrame, UnsubscribeFrame, PingFrame)
SERVER_FRAMES: tuple[type[Frame], ...] = (
    WelcomeFrame,
    SubscribedFrame,
    UnsubscribedFrame,
    EventFrame,
    ErrorFrame,
    PongFrame,
)
