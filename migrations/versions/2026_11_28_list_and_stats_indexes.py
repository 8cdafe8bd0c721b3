"""list and stats indexes

Lists: a filtered page is read in sort order from an index that carries every column the
filters and the visibility rule test, so no alert row is read until it is on the page
(PostgreSQL: an index-only scan); the index by seq also finds the alerts rare words name.
They replace the narrow (operation_id, occurred_at, seq) and (operation_id, seq) indexes,
their prefixes. Items: an alert's items with their commodity, unit and quantity, for
commodity filters and the statistics; it replaces the index on alert_id alone.

PostgreSQL full text: the document is stored (a generated column) and indexed, instead
of an index on the expression, so that testing an alert met in sort order costs a lookup
rather than parsing its texts again. Written by hand, as in the initial migration.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 06:56:13.326390
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTED = [
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
DOCUMENT = (
    "to_tsvector('english', coalesce(summary, '') || ' ' || coalesce(narrative, '') "
    "|| ' ' || coalesce(concealment, ''))"
)


def upgrade() -> None:
    op.create_index(
        "ix_alert_list_occurred", "alert", ["operation_id", "occurred_at", "seq", *LISTED]
    )
    op.create_index("ix_alert_list_seq", "alert", ["operation_id", "seq", "occurred_at", *LISTED])
    op.drop_index("ix_alert_operation_occurred", table_name="alert")
    op.drop_index("ix_alert_operation_seq", table_name="alert")
    op.create_index(
        "ix_alert_item_alert", "alert_item", ["alert_id", "commodity", "unit", "quantity"]
    )
    op.drop_index("ix_alert_item_alert_id", table_name="alert_item")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_alert_fulltext")
        op.execute(
            f"ALTER TABLE alert ADD COLUMN fulltext_document tsvector GENERATED ALWAYS AS ({DOCUMENT}) STORED"
        )
        op.execute("CREATE INDEX ix_alert_fulltext ON alert USING gin (fulltext_document)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_alert_fulltext")
        op.execute("ALTER TABLE alert DROP COLUMN fulltext_document")
        op.execute(f"CREATE INDEX ix_alert_fulltext ON alert USING gin ({DOCUMENT})")
    op.create_index("ix_alert_item_alert_id", "alert_item", ["alert_id"])
    op.drop_index("ix_alert_item_alert", table_name="alert_item")
    op.create_index("ix_alert_operation_seq", "alert", ["operation_id", "seq"])
    op.create_index("ix_alert_operation_occurred", "alert", ["operation_id", "occurred_at", "seq"])
    op.drop_index("ix_alert_list_seq", table_name="alert")
    op.drop_index("ix_alert_list_occurred", table_name="alert")
