"""the list indexes carry each alert's commodities: alert.commodity_mask

A commodity filter was tested per alert met in sort order, by a lookup in alert_item: a
commodity that one alert in 200 holds cost some 10,000 lookups for a page. The alert now
keeps its items' commodities as bits (app/models/alert.py, COMMODITY_BITS) and both list
indexes carry them, so the test is made on the index entry. Filled here from the items
already stored.

The fill rewrites every alert that has items (nearly all). On PostgreSQL that clears the
table's visibility map until the next VACUUM, and index-only list reads fetch rows
meanwhile: autovacuum catches up on its own, `VACUUM ANALYZE alert` after the upgrade
does it at once (`VACUUM FULL alert` also gives back the space the old rows held).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of app/models/alert.py's COMMODITY_BITS as it stood for this revision.
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
LISTED_BEFORE = [
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
    "id",
]
LISTED = [*LISTED_BEFORE[:-1], "commodity_mask", "id"]


def _drop_list_indexes() -> None:
    op.drop_index("ix_alert_list_occurred", table_name="alert")
    op.drop_index("ix_alert_list_seq", table_name="alert")


def _list_indexes(listed: list[str]) -> None:
    op.create_index(
        "ix_alert_list_occurred", "alert", ["operation_id", "occurred_at", "seq", *listed]
    )
    op.create_index("ix_alert_list_seq", "alert", ["operation_id", "seq", "occurred_at", *listed])


def upgrade() -> None:
    # The old list indexes go first: the fill would otherwise add an entry to each of
    # them for every alert it rewrites, only to drop them afterwards.
    _drop_list_indexes()
    op.add_column(
        "alert",
        sa.Column("commodity_mask", sa.Integer(), server_default="0", nullable=False),
    )
    bit = " ".join(f"WHEN '{c}' THEN {1 << i}" for i, c in enumerate(COMMODITY_BITS))
    # Distinct powers of two: their sum is their bitwise or, on both stores. The SQL is
    # built from this file's constants only.
    fill = (
        "UPDATE alert SET commodity_mask = ("  # noqa: S608 (constants only)
        f"SELECT coalesce(sum(DISTINCT CASE alert_item.commodity {bit} ELSE 0 END), 0) "
        "FROM alert_item WHERE alert_item.alert_id = alert.id) "
        "WHERE EXISTS (SELECT 1 FROM alert_item WHERE alert_item.alert_id = alert.id)"
    )
    op.execute(fill)
    _list_indexes(LISTED)


def downgrade() -> None:
    _drop_list_indexes()
    op.drop_column("alert", "commodity_mask")
    _list_indexes(LISTED_BEFORE)
