"""Search summaries beside the bytes: each chunk's trigram bitmap (see chunkgrams.py).

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
    op.add_column("log_chunks", sa.Column("trigrams", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("log_chunks", "trigrams")
