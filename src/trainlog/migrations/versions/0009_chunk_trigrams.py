"""Search summaries beside the bytes: each chunk's trigram bitmap (see chunkgrams.py), in a
table of its own (setting a column of log_chunks would rewrite the chunk's row in SQLite).

Chunks stored before this revision have none and are searched by reading them, as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chunk_summaries",
        sa.Column(
            "run_id",
            sa.Uuid(),
            sa.ForeignKey("training_logs.run_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("start_offset", sa.BigInteger(), primary_key=True),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("trigrams", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chunk_summaries")
