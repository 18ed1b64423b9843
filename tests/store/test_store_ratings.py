"""Ratings ("more / less like this"): revision 0004 upgrades a 0001 database with its
rows kept; recording is idempotent, flips, undoes, clears, loads in bulk, and goes
with its subscriber (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect as sa_inspect

from digest import store, subscriptions
from digest.records import PaperRecord
from digest.store import Recorded


def test_upgrade_from_0001_with_data_keeps_rows_and_adds_the_table(tmp_path, settings):
    engine = store.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    store.upgrade(engine, "0001")
    store.merge_papers(engine, [PaperRecord(id="2401.00001", title="A", source="t")])
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO subscriber (email, status, keywords, max_papers, timezone, send_at,"
            " frequency, notify_empty, bounces, created_at, token_version)"
            " VALUES ('old@example.org', 'active', 'diffusion', 20, 'UTC', '07:00', 'daily',"
            " 0, 0, '2026-01-01 00:00:00', 0)"
        )
    assert not sa_inspect(engine).has_table("rating")
    store.ensure_schema(engine)
    assert store.current_revision(engine) == store.HEAD
    sub = store.get_subscriber(engine, "old@example.org")
    assert sub is not None and sub.keywords == "diffusion"
    assert store.record_rating(engine, sub.id, "2401.00001", 1) == Recorded.NEW
    store.downgrade(engine, "0001")
    assert not sa_inspect(engine).has_table("rating")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT email FROM subscriber").scalars().all() == [
            "old@example.org"
        ]
    engine.dispose()


def exercise(engine, settings) -> None:
    store.merge_papers(
        engine,
        [PaperRecord(id=f"2401.0000{i}", title=f"Paper {i}", source="t") for i in range(3)],
    )
    ada = subscriptions.subscribe(engine, settings, "ada@example.org", "x")
    bob = subscriptions.subscribe(engine, settings, "bob@example.org", "x")
    assert store.record_rating(engine, ada.id, "2401.00000", 1) == Recorded.NEW
    assert store.record_rating(engine, ada.id, "2401.00000", 1) == Recorded.UNCHANGED
    assert store.record_rating(engine, ada.id, "2401.00001", -1) == Recorded.NEW
    assert store.record_rating(engine, ada.id, "2401.00001", 1) == Recorded.CHANGED
    assert store.record_rating(engine, ada.id, "gone-paper", -1) == Recorded.NEW
    assert store.record_rating(engine, bob.id, "2401.00002", -1) == Recorded.NEW
    with pytest.raises(ValueError):
        store.record_rating(engine, ada.id, "2401.00002", 2)

    listed = store.list_ratings(engine, ada.id)
    assert {(r.paper_id, r.vote, r.title) for r in listed} == {
        ("2401.00000", 1, "Paper 0"),
        ("2401.00001", 1, "Paper 1"),
        ("gone-paper", -1, None),
    }
    assert store.ratings_for(engine, [ada.id, bob.id, 999]) == {
        ada.id: {"2401.00000": 1, "2401.00001": 1, "gone-paper": -1},
        bob.id: {"2401.00002": -1},
    }
    assert store.undo_rating(engine, ada.id, "2401.00000") is True
    assert store.undo_rating(engine, ada.id, "2401.00000") is False
    assert store.clear_ratings(engine, ada.id, []) == 0
    assert store.clear_ratings(engine, ada.id) == 2
    assert store.ratings_for(engine, [ada.id]) == {}
    # A subscriber's ratings go with them.
    store.delete_subscriber(engine, "bob@example.org")
    assert store.ratings_for(engine, [bob.id]) == {}


def test_ratings_on_sqlite(engine, settings):
    exercise(engine, settings)


@pytest.mark.postgres
def test_ratings_on_postgresql(postgres_url, settings):
    engine = store.make_engine(postgres_url)
    store.init_db(engine)
    exercise(engine, settings)
    engine.dispose()
