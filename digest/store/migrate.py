"""Schema versions: Alembic revisions shipped in `digest/store/migrations`.

Every command opens the database through `ensure_schema`, so start-up must stay cheap: one
query reads the version, and Alembic is imported only when the database is behind.
Upgrades are serialised (a PostgreSQL advisory lock held by the upgrading
transaction; on SQLite a lock file next to the database), and a process that gets
the lock after another finished finds the database at head and does nothing.

A database made before versioned migrations (tables, no `alembic_version`) is
adopted: the legacy steps bring it to the 0.1.0 shape, it is stamped 0001 (the
0.1.0 schema), then upgraded like any other.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

import digest.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from digest.errors import InputError
from digest.store.legacy import (
    add_missing_columns,
    legacy_metadata,
    looks_like_digest,
    move_digest_messages,
)

# The newest revision. Kept here so that start-up needs no Alembic import to know
# whether to upgrade; a test checks it against the scripts.
HEAD = "0006"
# The 0.1.0 schema: what a database from before versioned migrations is stamped.
LEGACY_REVISION = "0001"
MIGRATIONS = Path(__file__).parent / "migrations"
# The one statement that reads the revision: start-up runs it alone (no inspection).
_VERSION = text("SELECT version_num FROM alembic_version")
_PG_LOCK_KEY = 0x64696765  # "dige": one advisory lock for digest's schema upgrades


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's filter: compare only our tables. Others share the database (the
    scheduler's job store keeps its own table there) and are not ours to create or
    drop. A table we stop modelling must be dropped by an explicit revision."""
    return type_ != "table" or name in SQLModel.metadata.tables


@dataclass
class Revision:
    """One migration script, as `digest db history` lists it."""

    revision: str
    down_revision: str | None
    message: str
    is_current: bool
    is_head: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "down_revision": self.down_revision,
            "message": self.message,
            "current": self.is_current,
            "head": self.is_head,
        }


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for an empty or a pre-migrations database."""
    with engine.connect() as conn:
        return _read_version(conn)


def is_known_revision(revision: str) -> bool:
    """Whether a revision is one of ours (a database a newer digest upgraded is not):
    read from the scripts' file names, so no Alembic import."""
    return any(p.name.split("_", 1)[0] == revision for p in (MIGRATIONS / "versions").glob("*.py"))


def _read_version(conn: Connection) -> str | None:
    if not sa_inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(_VERSION).scalar()


def ensure_schema(engine: Engine) -> None:
    """Create the schema, or bring it to head: what every command does on start-up,
    so it costs one query when the database is at head already."""
    try:
        with engine.connect() as conn:
            at = conn.execute(_VERSION).scalar()
    except DBAPIError:  # no version table: a new or a pre-migrations database
        at = None
    if at != HEAD:
        upgrade(engine)


def init_db(engine: Engine) -> None:
    """`digest init`: `ensure_schema`, then mend what a hand edit or a restored older
    copy can leave behind (model columns missing from their tables, messages still in
    `digest.message`), as `digest init` always did. Safe to run any number of times."""
    ensure_schema(engine)
    with _upgrade_lock(engine):
        add_missing_columns(engine)
        move_digest_messages(engine)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade to `revision` (head by default), adopting a pre-migrations database."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade to `revision` ("base": no tables left)."""
    _run(engine, "downgrade", revision)


def history(engine: Engine) -> list[Revision]:
    """Every revision, newest first, marked current and head."""
    from alembic.script import ScriptDirectory  # Alembic only when asked (see module doc)

    current = current_revision(engine)
    scripts = ScriptDirectory(str(MIGRATIONS))
    heads = set(scripts.get_heads())
    return [
        Revision(
            s.revision,
            s.down_revision
            if isinstance(s.down_revision, str | None)
            else ",".join(s.down_revision),
            " ".join((s.doc or "").split()),
            s.revision == current,
            s.revision in heads,
        )
        for s in scripts.walk_revisions()
    ]


def _run(engine: Engine, direction: str, revision: str) -> None:
    # Imported here, not at the top: every CLI start calls ensure_schema, and Alembic
    # (with Mako) costs more than the whole start-up when nothing needs upgrading.
    from alembic import command
    from alembic.config import Config
    from alembic.util.exc import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _upgrade_lock(engine) as conn:
        at = _read_version(conn)
        if direction == "upgrade" and at is None and _has_tables(conn):
            _adopt_legacy(engine, conn, config)
            at = LEGACY_REVISION
        if direction == "upgrade" and revision == "head" and at == HEAD:
            return  # another process upgraded it while we waited for the lock
        config.attributes["connection"] = conn
        try:
            getattr(command, direction)(config, revision)
        except (CommandError, AssertionError, KeyError, ValueError) as exc:
            # Alembic answers some malformed revision strings ("head+1", "", "@") and
            # an empty version row with a bare AssertionError or KeyError: one line too.
            if direction == "upgrade" and revision == "head" and at is not None:
                raise InputError(
                    f"the database is at revision {at[:40]}, which this digest does not "
                    f"know (its newest is {HEAD}); a newer digest has upgraded it"
                ) from None
            reason = str(exc)[:200] if isinstance(exc, CommandError) else "not a revision"
            raise InputError(f"{direction} {revision[:80]!r}: {reason}") from None


def _has_tables(conn: Connection) -> bool:
    have = set(sa_inspect(conn).get_table_names())
    return any(t in have for t in SQLModel.metadata.tables)


def _adopt_legacy(engine: Engine, conn: Connection, config: Any) -> None:
    """Bring a pre-migrations database to the 0.1.0 shape and stamp it."""
    from alembic import command

    if not looks_like_digest(engine):
        raise InputError(
            "the database has tables named like digest's (paper, subscriber, ...) but "
            "was not made by digest; point DIGEST_DATABASE_URL at digest's own database"
        )
    # The legacy steps, as `digest init` ran them before: missing tables, missing
    # columns (only those of 0.1.0: later ones are their revisions' to add), and the
    # move of digest messages to their own table.
    # They commit on their own connections: the lock is held by `conn` meanwhile.
    frozen = legacy_metadata()
    frozen.create_all(engine)
    add_missing_columns(engine, frozen)
    move_digest_messages(engine)
    config.attributes["connection"] = conn
    command.stamp(config, LEGACY_REVISION)


@contextlib.contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that only one process at a time gets."""
    with contextlib.ExitStack() as stack:
        if engine.dialect.name == "sqlite":
            stack.enter_context(_file_lock(engine.url.database))
        conn = stack.enter_context(engine.begin())
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield conn


@contextlib.contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    """An exclusive lock on `<database>.migrate-lock`; none for an in-memory database
    (only this process sees it) or where the lock file cannot be made."""
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    try:
        handle = open(f"{database}.migrate-lock", "a")  # noqa: SIM115 (held until the end)
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
