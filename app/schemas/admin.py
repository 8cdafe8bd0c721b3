"""Administrations, operations, participants and keys (API.md sections 2 and 4)."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from app.schemas.alert import StrictModel
from app.schemas.types import Code, OutDatetime, Territory, UtcDatetime, text
from app.schemas.vocabulary import Role


class AdministrationIn(StrictModel):
    code: Code
    name: text(1, 200)  # type: ignore[valid-type]
    territory: Territory


class AdministrationOut(BaseModel):
    code: str
    name: str
    territory: str
    created_at: OutDatetime


class OperationIn(StrictModel):
    code: Code
    name: text(1, 200)  # type: ignore[valid-type]
    description: text(0, 5000) | None = None  # type: ignore[valid-type]
    coordinator: Code
    participants: list[Code] = Field(default_factory=list, max_length=500)
    starts_at: UtcDatetime
    ends_at: UtcDatetime

    @model_validator(mode="after")
    def _period(self) -> OperationIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        self.participants = list(dict.fromkeys(self.participants))
        return self


class OperationOut(BaseModel):
    code: str
    name: str
    description: str | None
    coordinator: str
    participants: list[str]
    starts_at: OutDatetime
    ends_at: OutDatetime
    status: str = Field(description="`open`, or `closed` once closed")
    closed_at: OutDatetime | None
    created_at: OutDatetime


class ParticipantIn(StrictModel):
    administration: Code


class KeyIn(StrictModel):
    administration: Code | None = None
    role: Role
    label: text(1, 100)  # type: ignore[valid-type]
    expires_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _administration_matches_role(self) -> KeyIn:
        if self.role is Role.admin and self.administration is not None:
            raise ValueError("admin keys belong to no administration")
        if self.role is not Role.admin and self.administration is None:
            raise ValueError(f"{self.role.value} keys need an administration")
        return self


class KeyOut(BaseModel):
    id: str
    administration: str | None
    role: Role
    label: str
    created_at: OutDatetime
    expires_at: OutDatetime | None
    revoked_at: OutDatetime | None = None


class KeyCreated(KeyOut):
    token: str = Field(description="Shown once; only its hash is stored")


class Me(BaseModel):
    key_id: str
    administration: str | None
    role: Role
    label: str
