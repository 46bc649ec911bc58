"""The line index: newline totals per log, and per chunk the newlines before it and its times.

Logs stored before this revision keep NULLs until they are indexed on first use
(store.build_line_index); their lines have no times.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("training_logs", sa.Column("newlines", sa.BigInteger()))
    op.add_column("training_logs", sa.Column("last_line_start", sa.BigInteger()))
    # Empty logs need no pass over their bytes.
    op.execute("UPDATE training_logs SET newlines = 0, last_line_start = 0 WHERE size = 0")
    op.add_column("log_chunks", sa.Column("newlines_before", sa.BigInteger()))
    op.add_column("log_chunks", sa.Column("times", sa.LargeBinary()))
    op.create_index(
        "ix_log_chunks_lines", "log_chunks", ["run_id", "newlines_before", "start_offset"]
    )


def downgrade() -> None:
    op.drop_index("ix_log_chunks_lines", table_name="log_chunks")
    with op.batch_alter_table("log_chunks") as table:
        table.drop_column("times")
        table.drop_column("newlines_before")
    with op.batch_alter_table("training_logs") as table:
        table.drop_column("last_line_start")
        table.drop_column("newlines")
