"""Engine set-up: one engine per database URL, tuned so that the web app, the
scheduler and a cron `digest run` can share one SQLite file; and the URL as shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlmodel import create_engine


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


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so that the web app,
    the scheduler and a cron `digest run` can share one file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
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
