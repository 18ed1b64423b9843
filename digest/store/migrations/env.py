"""Alembic's environment for digest: always run from `digest.store.migrate`, which
hands over an open connection (inside the upgrade lock) in `config.attributes`."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import digest.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from digest.store.migrate import include_name

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite cannot ALTER most things: later revisions use batch operations there.
    render_as_batch=connection.dialect.name == "sqlite",
    # Only our tables: the scheduler's job table lives in the same database.
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
