"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 06:03:00.102951
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from ulid import ULID

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Full-text search over summary, narrative and concealment (API.md section 6, ``q``).
# SQLite: an FTS5 table keyed by the alert's ``seq``, kept current by triggers.
SQLITE_FULLTEXT = [
    "CREATE VIRTUAL TABLE alert_fts USING fts5("
    "summary, narrative, concealment, tokenize='porter unicode61')",
    "CREATE TRIGGER alert_fts_insert AFTER INSERT ON alert BEGIN "
    "INSERT INTO alert_fts(rowid, summary, narrative, concealment) "
    "VALUES (new.seq, new.summary, new.narrative, new.concealment); END",
    "CREATE TRIGGER alert_fts_update AFTER UPDATE OF summary, narrative, concealment ON alert "
    "BEGIN DELETE FROM alert_fts WHERE rowid = old.seq; "
    "INSERT INTO alert_fts(rowid, summary, narrative, concealment) "
    "VALUES (new.seq, new.summary, new.narrative, new.concealment); END",
    "CREATE TRIGGER alert_fts_delete AFTER DELETE ON alert BEGIN "
    "DELETE FROM alert_fts WHERE rowid = old.seq; END",
]
# PostgreSQL: a GIN index on exactly the expression app/services/search.py queries.
POSTGRES_FULLTEXT = (
    "CREATE INDEX ix_alert_fulltext ON alert USING gin (to_tsvector('english', "
    "coalesce(summary, '') || ' ' || coalesce(narrative, '') || ' ' || coalesce(concealment, '')))"
)


def upgrade() -> None:
    op.create_table(
        "administration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_administration")),
        sa.UniqueConstraint("code", name=op.f("uq_administration_code")),
    )
    op.create_table(
        "audit_record",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=26), nullable=True),
        sa.Column("administration", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=True),
        sa.Column("alert_ids", sa.Text(), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_record")),
    )
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_record_action"), ["action"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_record_administration"), ["administration"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_record_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_record_key_id"), ["key_id"], unique=False)

    op.create_table(
        "event",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(length=26), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_event")),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_operation_id"), ["operation_id"], unique=False)

    op.create_table(
        "event_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.String(length=26), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_counter")),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("administration_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["administration_id"],
            ["administration.id"],
            name=op.f("fk_api_key_administration_id_administration"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_key_token_hash")),
    )
    op.create_table(
        "idempotency_record",
        sa.Column("administration_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["administration_id"],
            ["administration.id"],
            name=op.f("fk_idempotency_record_administration_id_administration"),
        ),
        sa.PrimaryKeyConstraint("administration_id", "key", name=op.f("pk_idempotency_record")),
    )
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_record_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "operation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("coordinator_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["coordinator_id"],
            ["administration.id"],
            name=op.f("fk_operation_coordinator_id_administration"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operation")),
        sa.UniqueConstraint("code", name=op.f("uq_operation_code")),
    )
    op.create_table(
        "alert",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("reporter_key_label", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tlp", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("transport_mode", sa.String(length=32), nullable=True),
        sa.Column("detection_method", sa.String(length=32), nullable=True),
        sa.Column("origin", sa.String(length=2), nullable=True),
        sa.Column("destination", sa.String(length=2), nullable=True),
        sa.Column("audience_scope", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("concealment", sa.Text(), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("withdrawn_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["operation.id"], name=op.f("fk_alert_operation_id_operation")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["administration.id"], name=op.f("fk_alert_reporter_id_administration")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
        sa.UniqueConstraint("seq", name=op.f("uq_alert_seq")),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alert_operation_occurred", ["operation_id", "occurred_at", "seq"], unique=False
        )
        batch_op.create_index("ix_alert_operation_seq", ["operation_id", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_reporter_id"), ["reporter_id"], unique=False)

    op.create_table(
        "participation",
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("administration_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["administration_id"],
            ["administration.id"],
            name=op.f("fk_participation_administration_id_administration"),
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["operation.id"], name=op.f("fk_participation_operation_id_operation")
        ),
        sa.PrimaryKeyConstraint("operation_id", "administration_id", name=op.f("pk_participation")),
    )
    with op.batch_alter_table("participation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_participation_administration_id"), ["administration_id"], unique=False
        )

    op.create_table(
        "ack",
        sa.Column("alert_id", sa.String(length=26), nullable=False),
        sa.Column("administration_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("by_label", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["administration_id"],
            ["administration.id"],
            name=op.f("fk_ack_administration_id_administration"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alert.id"], name=op.f("fk_ack_alert_id_alert"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("alert_id", "administration_id", name=op.f("pk_ack")),
    )
    op.create_table(
        "alert_concealment",
        sa.Column("alert_id", sa.String(length=26), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alert.id"],
            name=op.f("fk_alert_concealment_alert_id_alert"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "method", name=op.f("pk_alert_concealment")),
    )
    with op.batch_alter_table("alert_concealment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_concealment_method"), ["method"], unique=False)

    op.create_table(
        "alert_identifier",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.String(length=26), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alert.id"],
            name=op.f("fk_alert_identifier_alert_id_alert"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_identifier")),
    )
    with op.batch_alter_table("alert_identifier", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_identifier_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alert_identifier_value"), ["value"], unique=False)

    op.create_table(
        "alert_item",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.String(length=26), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("commodity", sa.String(length=32), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alert.id"],
            name=op.f("fk_alert_item_alert_id_alert"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_item")),
    )
    with op.batch_alter_table("alert_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_item_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index("ix_alert_item_commodity", ["commodity", "alert_id"], unique=False)

    op.create_table(
        "alert_recipient",
        sa.Column("alert_id", sa.String(length=26), nullable=False),
        sa.Column("administration_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["administration_id"],
            ["administration.id"],
            name=op.f("fk_alert_recipient_administration_id_administration"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alert.id"],
            name=op.f("fk_alert_recipient_alert_id_alert"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "administration_id", name=op.f("pk_alert_recipient")),
    )
    with op.batch_alter_table("alert_recipient", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_recipient_administration_id"), ["administration_id"], unique=False
        )

    op.create_table(
        "comment",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("alert_id", sa.String(length=26), nullable=False),
        sa.Column("administration_id", sa.Integer(), nullable=False),
        sa.Column("by_label", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["administration_id"],
            ["administration.id"],
            name=op.f("fk_comment_administration_id_administration"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alert.id"], name=op.f("fk_comment_alert_id_alert"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment")),
    )
    with op.batch_alter_table("comment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comment_alert_id"), ["alert_id"], unique=False)

    counter = sa.table(
        "event_counter",
        sa.column("id", sa.Integer),
        sa.column("last_seq", sa.BigInteger),
        sa.column("epoch", sa.String),
    )
    # The epoch names this event log; a store created anew gets a new one.
    op.bulk_insert(counter, [{"id": 1, "last_seq": 0, "epoch": str(ULID())}])
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FULLTEXT:
            op.execute(statement)
    else:
        op.execute(POSTGRES_FULLTEXT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS alert_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_alert_fulltext")
    with op.batch_alter_table("comment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comment_alert_id"))

    op.drop_table("comment")
    with op.batch_alter_table("alert_recipient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_recipient_administration_id"))

    op.drop_table("alert_recipient")
    with op.batch_alter_table("alert_item", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_item_commodity")
        batch_op.drop_index(batch_op.f("ix_alert_item_alert_id"))

    op.drop_table("alert_item")
    with op.batch_alter_table("alert_identifier", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_identifier_value"))
        batch_op.drop_index(batch_op.f("ix_alert_identifier_alert_id"))

    op.drop_table("alert_identifier")
    with op.batch_alter_table("alert_concealment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_concealment_method"))

    op.drop_table("alert_concealment")
    op.drop_table("ack")
    with op.batch_alter_table("participation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participation_administration_id"))

    op.drop_table("participation")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_reporter_id"))
        batch_op.drop_index("ix_alert_operation_seq")
        batch_op.drop_index("ix_alert_operation_occurred")

    op.drop_table("alert")
    op.drop_table("operation")
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_record_created_at"))

    op.drop_table("idempotency_record")
    op.drop_table("api_key")
    op.drop_table("event_counter")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_operation_id"))
        batch_op.drop_index(batch_op.f("ix_event_alert_id"))

    op.drop_table("event")
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_record_key_id"))
        batch_op.drop_index(batch_op.f("ix_audit_record_at"))
        batch_op.drop_index(batch_op.f("ix_audit_record_administration"))
        batch_op.drop_index(batch_op.f("ix_audit_record_action"))

    op.drop_table("audit_record")
    op.drop_table("administration")
