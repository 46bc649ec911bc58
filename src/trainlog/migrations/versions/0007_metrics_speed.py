"""Metric series summaries in blocks of consecutive points, for fast downsampling.

Points extracted before this revision have no summaries: they are dropped and every run's
extraction starts again from its log's first byte (on first use for an ended run, by its
follower for a live one), this time with summaries.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_blocks",
        sa.Column(
            "run_id",
            sa.Uuid(),
            sa.ForeignKey("experiment_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("block", sa.BigInteger(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("lo", sa.Double()),
        sa.Column("lo_seq", sa.BigInteger()),
        sa.Column("hi", sa.Double()),
        sa.Column("hi_seq", sa.BigInteger()),
        sa.Column("step_lo", sa.Double(), nullable=False),
        sa.Column("step_hi", sa.Double(), nullable=False),
    )
    op.execute("DELETE FROM metric_points")
    op.execute(
        "UPDATE metric_cursors SET byte_offset = 0, line = 1, counts = '{}', last_points = '{}'"
    )


def downgrade() -> None:
    op.drop_table("metric_blocks")
