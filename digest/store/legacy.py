"""The schema steps of releases before versioned migrations (up to 0.1.0).

A database made by such a release has tables but no `alembic_version`. These steps
bring any of them to the 0.1.0 shape, which migration 0001 describes; `migrate` then
stamps it 0001 and upgrades it like any other.

They compare with today's models, which are revision 0001. When a later revision
changes a table, freeze the 0.1.0 tables here and compare with those instead."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import literal as sa_literal
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel


def move_digest_messages(engine: Engine) -> int:
    """A database made before messages had their own table holds them in
    `digest.message`: copy them to `digestmessage` and drop the old column (empty it
    where SQLite is too old to drop columns), in one transaction. Returns how many
    were moved."""
    if not _has_column(engine, "digest", "message"):
        return 0
    sqlite_version = getattr(engine.dialect.dbapi, "sqlite_version_info", None)
    can_drop = engine.dialect.name != "sqlite" or (sqlite_version or (0,)) >= (3, 35)
    try:
        with engine.begin() as conn:
            moved = conn.execute(
                text(
                    "INSERT INTO digestmessage (digest_id, message) "
                    "SELECT id, message FROM digest WHERE message IS NOT NULL "
                    "AND id NOT IN (SELECT digest_id FROM digestmessage)"
                )
            ).rowcount
            if can_drop:
                conn.execute(text('ALTER TABLE digest DROP COLUMN "message"'))
            else:
                conn.execute(text("UPDATE digest SET message = NULL WHERE message IS NOT NULL"))
    except DBAPIError:
        if _has_column(engine, "digest", "message"):
            raise
        return 0  # another process upgraded the database at the same moment
    return moved or 0


def _has_column(engine: Engine, table: str, column: str) -> bool:
    return column in {c["name"] for c in sa_inspect(engine).get_columns(table)}


def _column_default_sql(engine: Engine, column: Any) -> str:
    """A DEFAULT clause for a column added to a table that already holds rows."""
    default = column.default
    if default is None:
        return ""
    if getattr(default, "is_scalar", False):
        literal = sa_literal(default.arg).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
        )
        return f" DEFAULT {literal}"
    if isinstance(column.type, JSON):
        sample = default.arg({}) if callable(default.arg) else default.arg
        return " DEFAULT '[]'" if isinstance(sample, list) else " DEFAULT '{}'"
    return ""


# What revisions after 0001 (the 0.1.0 schema) add: a database adopted from before
# versioned migrations is brought to the 0.1.0 shape only, stamped 0001, and those
# revisions then add these. Every later revision that adds a table or a column to an
# existing table lists it here (tests/store/test_store_migrations.py adopts a 0.1.0
# database and fails if one is missing).
TABLES_AFTER_0_1_0 = frozenset({"inboundevent"})
COLUMNS_AFTER_0_1_0 = frozenset({"subscriber.complaints"})


def legacy_tables() -> list[Any]:
    """The tables of the 0.1.0 schema, for `create_all(tables=...)` when adopting."""
    return [t for t in SQLModel.metadata.sorted_tables if t.name not in TABLES_AFTER_0_1_0]


def add_missing_columns(engine: Engine) -> list[str]:
    """`create_all` never changes a table that exists, so a database made by an older
    digest gets the columns added since then (up to 0.1.0; later ones are revisions)
    here (nullable, with their scalar default), which is what `digest init` promises
    by "upgrade". Returns what was added."""
    inspector = sa_inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in legacy_tables():
            if not inspector.has_table(table.name):
                continue
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have or f"{table.name}.{column.name}" in COLUMNS_AFTER_0_1_0:
                    continue
                col_type = column.type.compile(dialect=engine.dialect)
                default = _column_default_sql(engine, column)
                conn.execute(
                    text(
                        f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {col_type}{default}'
                    )
                )
                added.append(f"{table.name}.{column.name}")
    return added
