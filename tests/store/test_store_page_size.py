"""A new SQLite file is made with large pages (an edition stores a ~60 kB message per
digest); a file made before keeps its own page size and works as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from digest.store.engine import SQLITE_PAGE_SIZE, make_engine


def _page_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        size: int = conn.execute("PRAGMA page_size").fetchone()[0]
    return size


def test_a_new_database_file_gets_the_large_page_size(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (b BLOB)"))
        conn.execute(text("INSERT INTO t VALUES (:b)"), {"b": b"x" * 70_000})
    engine.dispose()
    assert SQLITE_PAGE_SIZE > 4096
    assert _page_size(path) == SQLITE_PAGE_SIZE


def test_an_existing_file_keeps_its_page_size_and_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (n INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as db:
        db.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as db:
        assert [r[0] for r in db.execute(text("SELECT n FROM t ORDER BY n"))] == [1, 2]
    engine.dispose()
    assert _page_size(path) == 4096
