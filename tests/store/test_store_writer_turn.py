"""The edition's writers on one SQLite file take turns on a lock beside it (woken as
soon as it is free) instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from digest.store.engine import contended_write, make_engine, writer_turn


def test_a_contended_write_waits_for_the_writer_holding_the_turn(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))

    @contended_write
    def add(engine_: object, n: int) -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})

    done = threading.Event()
    worker = threading.Thread(target=lambda: (add(engine, 2), done.set()))
    with writer_turn(engine):
        worker.start()
        # the other writer is kept out while the turn is held
        assert not done.wait(0.3)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
    assert done.wait(10), "the waiting writer ran once the turn was free"
    worker.join(10)
    with engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT n FROM t ORDER BY rowid"))] == [1, 2]
    assert (tmp_path / "digest.db-writer.lock").exists()


def test_no_lock_file_for_a_database_that_is_not_a_file(tmp_path: Path) -> None:
    engine = make_engine("sqlite://")
    with writer_turn(engine):
        pass
    with writer_turn(None):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_hold_the_lock_file_leaves_sqlite_to_lock(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    engine = make_engine(f"sqlite:///{folder / 'missing' / 'digest.db'}")
    with writer_turn(engine):  # the folder does not exist: no lock, no error
        pass
