"""Plain-English interests, example papers, and stored embeddings

subscriber.interest (text) and subscriber.likes (JSON list of arXiv ids), for the
interest profile kind; paperembedding (one vector per paper and model) and
profileembedding (one per subscriber and model, with the hash of the text it was
computed from). Existing subscribers keep their keyword profile as it was.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 11:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite takes it with a default), not a batch copy of the table:
    # the copy would lose subscriber's AUTOINCREMENT (ids must never be reused).
    op.add_column("subscriber", sa.Column("interest", sa.String(), nullable=True))
    op.add_column("subscriber", sa.Column("likes", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "paperembedding",
        sa.Column("paper_id", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("paper_id", "model"),
    )
    op.create_table(
        "profileembedding",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("topic_sha256", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id", "model"),
    )


def downgrade() -> None:
    op.drop_table("profileembedding")
    op.drop_table("paperembedding")
    op.drop_column("subscriber", "likes")
    op.drop_column("subscriber", "interest")
