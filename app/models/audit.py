"""Append-only audit records (API.md section 9). Never holds a token or a narrative."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, utcnow


class AuditRecord(Base):
    __tablename__ = "audit_record"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    key_id: Mapped[str | None] = mapped_column(String(26), index=True)
    administration: Mapped[str | None] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    operation: Mapped[str | None] = mapped_column(String(32))
    alert_ids: Mapped[str | None] = mapped_column(Text)
    query: Mapped[str | None] = mapped_column(Text)
