"""statistics kept added up: stat_rollup

The open alerts' figures per operation, dimension, group and audience, written in each
change's transaction (app/services/rollup.py), so that statistics read rows per group
instead of counting every alert. Filled here from the alerts already stored, by
the same statement that keeps it up to date.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.services import rollup

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stat_rollup",
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("dimension", sa.String(length=24), nullable=False),
        sa.Column("viewer_id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("reporter_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("alerts", sa.BigInteger(), nullable=False),
        sa.Column("seizures", sa.BigInteger(), nullable=False),
        sa.Column("mass_kg", sa.Float(), nullable=False),
        sa.Column("volume_l", sa.Float(), nullable=False),
        sa.Column("tablets", sa.Float(), nullable=False),
        sa.Column("pieces", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_stat_rollup_operation_id_operation"),
        ),
        sa.PrimaryKeyConstraint(
            "operation_id",
            "dimension",
            "viewer_id",
            "scope",
            "reporter_id",
            "key",
            name=op.f("pk_stat_rollup"),
        ),
    )
    rollup.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("stat_rollup")
