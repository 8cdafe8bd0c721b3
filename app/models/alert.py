"""Alerts and what hangs off them: items, identifiers, concealments, recipients, acks, comments.

The validated body lives in ``document`` (JSON text) and is the source of truth for
rendering; the scalar columns and child tables copy what lists, filters and stats query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, utcnow

# Every column a list filters on or the visibility rule tests (``id`` for its recipients),
# carried by the list indexes after the sort order: a filtered page is read from the index
# alone, in order, and only the page's alerts are then read whole.
LISTED = (
    "kind",
    "status",
    "priority",
    "transport_mode",
    "detection_method",
    "territory",
    "origin",
    "destination",
    "reporter_id",
    "audience_scope",
    "commodity_mask",
    "id",
)

# Bit ``i`` of ``Alert.commodity_mask`` is set when one of the alert's items holds
# ``COMMODITY_BITS[i]``. The list indexes carry the mask, so a commodity filter is tested
# on the index entry instead of looking up each alert's items. Append only: stored masks
# mean what this order says (migration 0004 keeps its own copy of it).
COMMODITY_BITS = (
    "methamphetamine",
    "amphetamine",
    "mdma",
    "heroin",
    "opium",
    "cocaine",
    "cannabis",
    "ketamine",
    "fentanyl",
    "nps",
    "tramadol",
    "other_drug",
    "ephedrine",
    "pseudoephedrine",
    "p2p",
    "p2np",
    "apaan",
    "apaa",
    "methylamine",
    "other_precursor",
)
_BIT_OF = {commodity: 1 << i for i, commodity in enumerate(COMMODITY_BITS)}


def commodity_mask(commodities: Iterable[str]) -> int:
    """The bits of ``commodities`` (an int4 on PostgreSQL: at most 31 commodities)."""
    mask = 0
    for commodity in commodities:
        mask |= _BIT_OF[commodity]
    return mask


class Alert(Base):
    __tablename__ = "alert"
    __table_args__ = (
        Index("ix_alert_list_occurred", "operation_id", "occurred_at", "seq", *LISTED),
        Index("ix_alert_list_seq", "operation_id", "seq", "occurred_at", *LISTED),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id"))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("administration.id"), index=True)
    reporter_key_label: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="open")
    tlp: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    territory: Mapped[str] = mapped_column(String(2))
    transport_mode: Mapped[str | None] = mapped_column(String(32))
    detection_method: Mapped[str | None] = mapped_column(String(32))
    origin: Mapped[str | None] = mapped_column(String(2))
    destination: Mapped[str | None] = mapped_column(String(2))
    audience_scope: Mapped[str] = mapped_column(String(16))
    commodity_mask: Mapped[int] = mapped_column(Integer, server_default="0")
    summary: Mapped[str] = mapped_column(String(300))
    narrative: Mapped[str | None] = mapped_column(Text)
    concealment: Mapped[str | None] = mapped_column(Text)
    document: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertItem(Base):
    __tablename__ = "alert_item"
    __table_args__ = (
        Index("ix_alert_item_commodity", "commodity", "alert_id"),
        # An alert's items with what the statistics read of them.
        Index("ix_alert_item_alert", "alert_id", "commodity", "unit", "quantity"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"))
    position: Mapped[int]
    commodity: Mapped[str] = mapped_column(String(32))
    form: Mapped[str | None] = mapped_column(String(16))
    quantity: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))


class AlertIdentifier(Base):
    __tablename__ = "alert_identifier"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(200), index=True)


class AlertConcealment(Base):
    __tablename__ = "alert_concealment"

    alert_id: Mapped[str] = mapped_column(
        ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True
    )
    method: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class AlertRecipient(Base):
    __tablename__ = "alert_recipient"

    alert_id: Mapped[str] = mapped_column(
        ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True
    )
    administration_id: Mapped[int] = mapped_column(
        ForeignKey("administration.id"), primary_key=True, index=True
    )


class Ack(Base):
    """The current acknowledgement of one administration; a new one replaces it."""

    __tablename__ = "ack"

    alert_id: Mapped[str] = mapped_column(
        ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True
    )
    administration_id: Mapped[int] = mapped_column(
        ForeignKey("administration.id"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    by_label: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Comment(Base):
    __tablename__ = "comment"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    administration_id: Mapped[int] = mapped_column(ForeignKey("administration.id"))
    by_label: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
