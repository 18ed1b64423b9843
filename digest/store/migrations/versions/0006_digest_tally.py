"""Digest tally: the outbox rows deleted (with their subscriber), counted by status

The /metrics counter `digest_digests_sent` is the tally's `sent` plus the sent rows
still stored, so deleting a subscriber (and their digests) never makes it go
backwards.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digesttally",
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("status"),
    )


def downgrade() -> None:
    op.drop_table("digesttally")
