"""Metric series extracted from the log: points and each run's extraction cursor.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_cursors",
        sa.Column(
            "run_id",
            sa.Uuid(),
            sa.ForeignKey("experiment_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("last_points", sa.JSON(), nullable=False),
        sa.Column("patterns", sa.JSON(), nullable=False),
        sa.Column("defaults", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "metric_points",
        sa.Column(
            "run_id",
            sa.Uuid(),
            sa.ForeignKey("experiment_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("step", sa.Double(), nullable=False),
        sa.Column("value", sa.Double()),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("time", sa.Double()),
    )
    op.create_index("ix_metric_points_series", "metric_points", ["run_id", "name", "seq"])


def downgrade() -> None:
    op.drop_table("metric_points")
    op.drop_table("metric_cursors")
