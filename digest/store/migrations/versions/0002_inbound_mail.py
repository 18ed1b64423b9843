"""Inbound mail: complaints per subscriber, and the inbound event log

`digest inbound` counts ARF complaints on the subscriber (`complaints`, like
`bounces`) and writes one `inboundevent` row per message it reads: the audit trail
and the bounce / complaint counts for metrics.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 11:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # server_default: existing rows get 0; the model gives new rows their value.
    with op.batch_alter_table("subscriber") as batch:
        batch.add_column(sa.Column("complaints", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "inboundevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inboundevent_kind", "inboundevent", ["kind"], unique=False)
    op.create_index(
        "ix_inboundevent_subscriber_id", "inboundevent", ["subscriber_id"], unique=False
    )
    op.create_index("ix_inboundevent_created_at", "inboundevent", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inboundevent_created_at", table_name="inboundevent")
    op.drop_index("ix_inboundevent_subscriber_id", table_name="inboundevent")
    op.drop_index("ix_inboundevent_kind", table_name="inboundevent")
    op.drop_table("inboundevent")
    # SQLite copies the table to drop a column: keep AUTOINCREMENT (ids never reused).
    with op.batch_alter_table("subscriber", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("complaints")
