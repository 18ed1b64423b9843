"""The schema of digest 0.1.0

As 0.1.0's models made it with create_all: same names for every table, index and
constraint, so a database made by 0.1.0 is this revision (and is stamped so).

Revision ID: 0001
Revises:
Create Date: 2026-11-29 08:57:20.461053
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "paper",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("abstract", sa.String(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("primary_category", sa.String(), nullable=True),
        sa.Column("published", sa.Date(), nullable=True),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("pdf_url", sa.String(), nullable=True),
        sa.Column("code_url", sa.String(), nullable=True),
        sa.Column("project_url", sa.String(), nullable=True),
        sa.Column("hf_url", sa.String(), nullable=True),
        sa.Column("upvotes", sa.Integer(), nullable=True),
        sa.Column("github_stars", sa.Integer(), nullable=True),
        sa.Column("num_comments", sa.Integer(), nullable=True),
        sa.Column("thumbnail", sa.String(), nullable=True),
        sa.Column("ai_summary", sa.String(), nullable=True),
        sa.Column("ai_keywords", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_paper_first_seen", "paper", ["first_seen"], unique=False)
    op.create_index("ix_paper_id", "paper", ["id"], unique=True)
    op.create_index("ix_paper_published", "paper", ["published"], unique=False)

    op.create_table(
        "rateevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rateevent_bucket", "rateevent", ["bucket"], unique=False)
    op.create_index("ix_rateevent_created_at", "rateevent", ["created_at"], unique=False)

    op.create_table(
        "sourcestate",
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("last_fetch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("last_counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "subscriber",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("keywords", sa.String(), nullable=False),
        sa.Column("max_papers", sa.Integer(), nullable=False),
        sa.Column("min_score", sa.Float(), nullable=True),
        sa.Column("timezone", sa.String(), nullable=False),
        sa.Column("send_at", sa.String(), nullable=False),
        sa.Column("frequency", sa.String(), nullable=False),
        sa.Column("weekday", sa.String(), nullable=True),
        sa.Column("notify_empty", sa.Boolean(), nullable=False),
        sa.Column("bounces", sa.Integer(), nullable=False),
        sa.Column("last_paper_seq", sa.Integer(), nullable=True),
        sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_subscriber_email", "subscriber", ["email"], unique=True)
    op.create_index("ix_subscriber_status", "subscriber", ["status"], unique=False)

    op.create_table(
        "digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("edition", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("paper_ids", sa.JSON(), nullable=False),
        sa.Column("explanations", sa.JSON(), nullable=False),
        sa.Column("paper_seq_from", sa.Integer(), nullable=False),
        sa.Column("paper_seq_to", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("smtp_reply", sa.String(), nullable=True),
        sa.Column("retry_from", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscriber.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "edition", name="uq_digest_edition"),
    )
    op.create_index("ix_digest_edition", "digest", ["edition"], unique=False)
    op.create_index("ix_digest_next_attempt_at", "digest", ["next_attempt_at"], unique=False)
    op.create_index("ix_digest_status", "digest", ["status"], unique=False)
    op.create_index("ix_digest_subscriber_id", "digest", ["subscriber_id"], unique=False)

    op.create_table(
        "digestmessage",
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["digest_id"], ["digest.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("digest_id"),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents.
    for table in ("digestmessage", "digest", "subscriber", "sourcestate", "rateevent", "paper"):
        op.drop_table(table)
