"""A joint operation, its coordinator (the OCU) and its participants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.administration import Administration
from app.models.base import Base, utcnow


class Operation(Base):
    __tablename__ = "operation"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("administration.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    coordinator: Mapped[Administration] = relationship(lazy="joined")
    participations: Mapped[list[Participation]] = relationship(
        lazy="selectin", back_populates="operation", order_by="Participation.joined_at"
    )


class Participation(Base):
    """Membership of an administration in an operation; ``removed_at`` ends it but keeps history."""

    __tablename__ = "participation"

    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id"), primary_key=True)
    administration_id: Mapped[int] = mapped_column(
        ForeignKey("administration.id"), primary_key=True, index=True
    )
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None]

    operation: Mapped[Operation] = relationship(back_populates="participations")
    administration: Mapped[Administration] = relationship(lazy="joined")
