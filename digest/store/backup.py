"""`digest backup`: a consistent copy of a SQLite database while digest runs.

SQLite's online backup API copies the pages from one read transaction: in WAL mode
(ours) a reader sees one snapshot and does not block the writers, so the copy is the
database as of one moment even while the web app and a `digest run` write. Copied
in one step: a stepwise backup restarts whenever another connection writes, and
could never finish under a steady writer. PostgreSQL has its own tool, `pg_dump`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import Engine, make_url

from digest.errors import InputError


class UsePgDump(InputError):
    """A PostgreSQL database: the backup is pg_dump's job; the message has the command."""


def sqlite_path(engine: Engine) -> Path | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database or "")


def pg_dump_command(url: str, target: Path) -> str:
    """The pg_dump line for `url`, password left out (PGPASSWORD or ~/.pgpass give it)."""
    parsed = make_url(url).set(drivername="postgresql", password=None)
    shown = parsed.render_as_string(hide_password=False)
    return f"pg_dump --format=custom --file {str(target)!r} '{shown}'"


def backup_sqlite(engine: Engine, target: Path, overwrite: bool = False) -> int:
    """Copy the database to `target` (written beside it, then renamed into place, so a
    failed backup never leaves a half file under the name); its size in bytes."""
    source = sqlite_path(engine)
    if source is None:
        raise UsePgDump(
            "digest backup copies SQLite databases; for PostgreSQL run: "
            + pg_dump_command(engine.url.render_as_string(hide_password=False), target)
        )
    if target.exists() and not overwrite:
        raise InputError(f"{target} exists; give --overwrite to replace it")
    if target.resolve() == source.resolve():
        raise InputError(f"{target} is the database itself")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: one step, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, target)
    return target.stat().st_size
