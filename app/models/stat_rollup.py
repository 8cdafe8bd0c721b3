"""Statistics kept ready: the open alerts' figures, added up per group as they are written."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class StatRollup(Base):
    """Figures of an operation's open alerts in one group of one dimension, split by who may
    see them: by reporter and audience scope, and ``viewer_id`` 0 for the alerts themselves
    or a recipient's id for each restricted alert addressed to it. Any administration's
    figures are then a sum over a few rows (``Reach.rollup_clause``), never a scan of the
    alerts. Written by ``app/services/rollup.py`` in the transaction of each change.
    """

    __tablename__ = "stat_rollup"

    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(24), primary_key=True)
    viewer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    reporter_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The group; '' stands for "no value" (a key is otherwise never empty).
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    alerts: Mapped[int] = mapped_column(BigInteger)
    seizures: Mapped[int] = mapped_column(BigInteger)
    mass_kg: Mapped[float] = mapped_column(Float)
    volume_l: Mapped[float] = mapped_column(Float)
    tablets: Mapped[float] = mapped_column(Float)
    pieces: Mapped[float] = mapped_column(Float)
