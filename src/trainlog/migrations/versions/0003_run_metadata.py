"""Where a run came from (name, tags, host, user, cwd, git), search text, deletes in progress,
and the indexes that page and filter thousands of runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from trainlog.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiment_runs") as batch:
        batch.add_column(sa.Column("name", sa.String(255)))
        batch.add_column(sa.Column("tags", sa.JSON()))
        batch.add_column(sa.Column("host", sa.String(255)))
        batch.add_column(sa.Column("user", sa.String(255)))
        batch.add_column(sa.Column("cwd", sa.Text()))
        batch.add_column(sa.Column("git", sa.JSON()))
        batch.add_column(sa.Column("search_text", sa.Text()))
        batch.add_column(sa.Column("deleted_at", UTCDateTime()))
    # Runs recorded before: searchable by config and command (as their JSON text).
    op.execute(
        "UPDATE experiment_runs SET search_text = "
        "lower(coalesce(config, '') || ' ' || CAST(command AS TEXT))"
    )
    op.create_index("ix_experiment_runs_created_id", "experiment_runs", ["created_at", "id"])
    op.create_index(
        "ix_experiment_runs_status_created_id", "experiment_runs", ["status", "created_at", "id"]
    )
    op.create_index(
        "ix_experiment_runs_config_created_id", "experiment_runs", ["config", "created_at", "id"]
    )
    op.create_table(
        "run_tags",
        sa.Column(
            "run_id",
            sa.Uuid(),
            sa.ForeignKey("experiment_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_run_tags_key_value_created", "run_tags", ["key", "value", "created_at", "run_id"]
    )


def downgrade() -> None:
    op.drop_table("run_tags")
    op.drop_index("ix_experiment_runs_config_created_id", "experiment_runs")
    op.drop_index("ix_experiment_runs_status_created_id", "experiment_runs")
    op.drop_index("ix_experiment_runs_created_id", "experiment_runs")
    with op.batch_alter_table("experiment_runs") as batch:
        for column in ("deleted_at", "search_text", "git", "cwd", "user", "host", "tags", "name"):
            batch.drop_column(column)
