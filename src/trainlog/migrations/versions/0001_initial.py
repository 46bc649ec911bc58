"""Runs, log sizes and log chunks keyed by byte offset.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from trainlog.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment_runs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("config", sa.String(255)),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime()),
        sa.Column("runner_host", sa.String(255)),
        sa.Column("runner_pid", sa.Integer()),
        sa.Column("pty", sa.Boolean(), nullable=False),
        sa.Column("term_cols", sa.Integer()),
        sa.Column("term_rows", sa.Integer()),
        sa.Column("log_truncated", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_experiment_runs_status", "experiment_runs", ["status"])
    op.create_index("ix_experiment_runs_created_at", "experiment_runs", ["created_at"])
    op.create_table(
        "training_logs",
        sa.Column(
            "run_id",
            sa.Uuid(),
            sa.ForeignKey("experiment_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "log_chunks",
        sa.Column(
            "run_id",
            sa.Uuid(),
            sa.ForeignKey("training_logs.run_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("start_offset", sa.BigInteger(), primary_key=True),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("codec", sa.SmallInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # trainlog compresses chunks itself (zstd, at compaction); PostgreSQL's own pglz on
        # every insert would slow capture for a worse ratio.
        op.execute("ALTER TABLE log_chunks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("log_chunks")
    op.drop_table("training_logs")
    op.drop_table("experiment_runs")
