"""Engine set-up: one engine per database URL, tuned so that the web app, the
scheduler and a cron `digest run` can share one SQLite file; and the URL as shown.

`Engine` and `DatabaseError` are re-exported so that the rest of digest names the
engine it passes around and the error it catches without importing SQLAlchemy."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Table, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.exc import SQLAlchemyError as DatabaseError
from sqlmodel import SQLModel, create_engine

from digest.errors import ConfigError

__all__ = [
    "DatabaseError",
    "Engine",
    "has_table",
    "make_engine",
    "missing_sqlite_file",
    "ping",
    "shown_url",
    "table_of",
]


def shown_url(url: str) -> str:
    """The database URL as printed and logged: its password masked."""
    try:
        parsed = make_url(url)
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def missing_sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file `url` names when that file does not exist
    (connecting would create an empty database there), else None: not SQLite, in
    memory, or there."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    name = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or name in {"", ":memory:"}:
        return None
    if name.startswith("file:") or parsed.query.get("mode") == "memory":
        return None  # a URI filename: its own rules, left to SQLite
    path = Path(name).expanduser()
    return None if path.exists() else path.absolute()


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a SQLModel class, for statements written against columns
    (`table.c.status`); SQLModel's type hints do not declare `__table__`."""
    table = inspect(model).local_table
    assert isinstance(table, Table)
    return table


# The page size a new SQLite file is made with (an existing one keeps its own). Every
# digest's message (~60 kB) is stored once per edition: in 4 kB pages that is ~17
# overflow pages, each a WAL frame to checksum, write and copy back at checkpoint;
# 16 kB pages wrote the same messages with ~40% less CPU here (the chunk commits of a
# build worker were ~5% of an edition's CPU).
SQLITE_PAGE_SIZE = 16384


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so that the web app,
    the scheduler and a cron `digest run` can share one file. A URL that names no
    database we can use (malformed, unknown dialect, driver not installed) is a
    ConfigError naming DIGEST_DATABASE_URL, password masked."""
    try:
        return _create(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConfigError(
            f"DIGEST_DATABASE_URL: cannot use {shown_url(url)}: {reason} "
            "(is the URL right and its driver installed?)"
        ) from None


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # Before WAL: it only takes on a file with no tables yet (see SQLITE_PAGE_SIZE).
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def ping(engine: Engine) -> None:
    """One round trip (the health check): raises SQLAlchemyError when the database is away."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def has_table(engine: Engine, name: str) -> bool:
    """Whether the database holds a table called `name` (ours or another library's)."""
    return inspect(engine).has_table(name)


P = ParamSpec("P")
R = TypeVar("R")
DEADLOCK_RETRIES = 3
# PostgreSQL's deadlock_detected and serialization_failure: the server aborted this
# transaction so that another could go on; nothing of it was written.
_RETRYABLE = frozenset({"40P01", "40001"})


def contended_write(fn: Callable[P, R]) -> Callable[P, R]:
    """For a function whose only effect is one write transaction that N processes run
    at once against an edition's rows (its first argument the engine). On SQLite the
    writers take turns (`writer_turn`). On PostgreSQL a transaction the server aborted
    to break a deadlock is run again: an edition must not fail because two processes
    once took row locks in a different order."""

    @functools.wraps(fn)
    def retried(*args: P.args, **kwargs: P.kwargs) -> R:
        attempt = 0
        while True:
            try:
                with writer_turn(args[0] if args else None):
                    return fn(*args, **kwargs)
            except DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None)
                if code not in _RETRYABLE or attempt >= DEADLOCK_RETRIES:
                    raise
            attempt += 1
            time.sleep(random.uniform(0, 0.05 * attempt))  # let the other one finish

    return retried


def writer_turn(engine: object) -> contextlib.AbstractContextManager[object]:
    """On a SQLite file, an exclusive lock on a file beside it for the length of a write
    transaction; elsewhere nothing. An edition's build workers and its sender write to
    one file all the time; left to SQLite, a writer finding it busy sleeps in steps of
    up to 100 ms however soon the other commits, and those sleeps left a quarter of two
    cores idle (10,000 subscribers: 17.5 -> 14.8 s, 26.7 -> 22.3 CPU-s). A process
    waiting on the lock is woken by the kernel the moment it is free. Writers that do
    not take turns (the web app, the CLI) still meet SQLite's busy timeout as before."""
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return contextlib.nullcontext()
    return _locked(f"{database}-writer.lock")


@contextlib.contextmanager
def _locked(path: str) -> Iterator[object]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a read-only folder: SQLite's own locking still holds
        yield None
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield None
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


@dataclass(frozen=True)
class DriverSql:
    """A statement in the driver's own SQL and parameter style, and the order of its
    parameters when that style is positional (SQLite's qmark)."""

    sql: str
    order: tuple[str, ...] | None

    def rows(self, params: list[dict[str, Any]]) -> list[Any]:
        if self.order is None:
            return params
        return [tuple(row[k] for k in self.order) for row in params]


@functools.lru_cache(maxsize=32)
def driver_sql(stmt: Any, dialect: Any) -> DriverSql:
    """`stmt` compiled once per dialect, so a batch of rows goes straight to the
    driver's executemany (`exec_driver_sql`) with no per-row work in SQLAlchemy (on a
    hot path: an edition's chunks, the sender's results). The caller passes values as
    the driver takes them (JSON as text, datetimes as the dialect binds them)."""
    compiled = stmt.compile(dialect=dialect)
    order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    return DriverSql(compiled.string, order)


def upsert_insert(table: Table, dialect_name: str) -> Any:
    """An INSERT into `table` that takes ON CONFLICT clauses: the two dialects we
    support each have their own (`on_conflict_do_nothing`, `on_conflict_do_update`)."""
    # Imported here: SQLAlchemy's PostgreSQL dialect (~25 ms with its drivers' modules)
    # is for PostgreSQL databases only, and every command starts through this module.
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def skipping_locked(picked: Any, engine: Engine) -> Any:
    """A SELECT of rows to claim or renew that passes over rows another transaction
    holds (PostgreSQL's FOR UPDATE SKIP LOCKED) instead of waiting for them: N
    processes share an edition's rows, and a waiter that holds other rows' locks is
    half a deadlock. SQLite has one writer at a time, so nothing to skip."""
    if engine.dialect.name != "postgresql":
        return picked
    return picked.with_for_update(skip_locked=True)
