"""The schema steps of releases before versioned migrations (up to 0.1.0).

A database made by such a release has tables but no `alembic_version`. These steps
bring any of them to the 0.1.0 shape, which migration 0001 describes; `migrate` then
stamps it 0001 and upgrades it like any other.

They compare with the 0.1.0 tables frozen in `SCHEMA_0_1_0` (table -> columns), not
with today's models: a column added by a later revision must be added by that
revision, after the stamp, or the upgrade would add it twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, MetaData, PrimaryKeyConstraint, Table, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import literal as sa_literal
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

import digest.models  # noqa: F401  (registers the tables on SQLModel.metadata)


def _columns(names: str) -> frozenset[str]:
    return frozenset(names.split())


# The columns of each table in 0.1.0 (revision 0001). Frozen: never edit when a later
# revision adds columns.
SCHEMA_0_1_0: dict[str, frozenset[str]] = {
    "paper": _columns(
        "abstract ai_keywords ai_summary authors categories code_url first_seen "
        "github_stars hf_url id num_comments pdf_url primary_category project_url "
        "published seq sources thumbnail title updated_at upvotes url"
    ),
    "subscriber": _columns(
        "bounces confirmed_at created_at email frequency id keywords last_digest_at "
        "last_paper_seq max_papers min_score notify_empty send_at status timezone "
        "token_version unsubscribed_at weekday"
    ),
    "digest": _columns(
        "attempts created_at edition explanations id last_error lease_owner lease_until "
        "message_id next_attempt_at paper_ids paper_seq_from paper_seq_to recipient "
        "retry_from sent_at smtp_reply status subject subscriber_id"
    ),
    "digestmessage": frozenset({"digest_id", "message"}),
    "sourcestate": frozenset(
        {"cursor", "last_counts", "last_error", "last_fetch_at", "last_status", "name"}
    ),
    "rateevent": frozenset({"bucket", "created_at", "id"}),
}
# What every digest database has had since its first release: a database with some of
# our table names but not these columns belongs to something else and is not adopted.
_DIGEST_SIGNATURE = {
    "paper": {"seq", "id", "title"},
    "subscriber": {"id", "email", "keywords"},
}


def legacy_metadata() -> MetaData:
    """Today's tables cut down to their 0.1.0 columns: what adoption may create or add."""
    frozen = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        keep = SCHEMA_0_1_0.get(table.name)
        if keep is not None:
            constraints = [
                c._copy()
                for c in list(table.constraints)
                if not isinstance(c, PrimaryKeyConstraint) and _names(c) <= keep
            ]
            Table(
                table.name,
                frozen,
                *[c._copy() for c in table.columns if c.name in keep],
                *constraints,
                **table.dialect_kwargs,
            )
    return frozen


def _names(constraint: Any) -> set[str]:
    return {c if isinstance(c, str) else c.name for c in constraint.columns}


def looks_like_digest(engine: Engine) -> bool:
    """Whether a database without a version table was made by digest (0.1.0 or
    older): the tables it has always had, with their key columns."""
    inspector = sa_inspect(engine)
    for table, needed in _DIGEST_SIGNATURE.items():
        if not inspector.has_table(table):
            return False
        if not needed <= {c["name"] for c in inspector.get_columns(table)}:
            return False
    return True


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


def add_missing_columns(engine: Engine, metadata: MetaData | None = None) -> list[str]:
    """`create_all` never changes a table that exists, so a database made by an older
    digest gets the columns added since then here (nullable, with their scalar default),
    which is what `digest init` promises by "upgrade". `metadata` is what to compare
    with: today's models by default, `legacy_metadata()` when adopting. Returns what
    was added."""
    inspector = sa_inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in (metadata or SQLModel.metadata).sorted_tables:
            if not inspector.has_table(table.name):
                continue
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
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
