"""`digest init` creates *or upgrades* the database: a file made by an older digest,
missing columns added since, is brought up to date in place without losing rows."""

from __future__ import annotations

import sqlite3

from digest import store


def test_init_adds_columns_missing_from_an_older_database(tmp_path, cli):
    db = tmp_path / "digest.db"
    assert cli("subscribe", "ada@example.org", "--keywords", "diffusion").code == 0
    with sqlite3.connect(db) as conn:
        conn.execute('ALTER TABLE digest DROP COLUMN "retry_from"')
        conn.execute('ALTER TABLE subscriber DROP COLUMN "notify_empty"')
        conn.execute('ALTER TABLE subscriber DROP COLUMN "bounces"')
    res = cli("init")
    assert res.code == 0, res.stderr
    with sqlite3.connect(db) as conn:
        digest_cols = {r[1] for r in conn.execute("PRAGMA table_info(digest)")}
        sub_cols = {r[1] for r in conn.execute("PRAGMA table_info(subscriber)")}
        row = conn.execute("SELECT email, bounces, notify_empty FROM subscriber").fetchone()
    assert "retry_from" in digest_cols
    assert {"notify_empty", "bounces"} <= sub_cols
    assert row == ("ada@example.org", 0, 0)
    assert cli("run").code == 0


def test_upgrade_is_idempotent(engine):
    assert store.add_missing_columns(engine) == []
    store.init_db(engine)
    assert store.add_missing_columns(engine) == []


def test_a_deleted_subscribers_id_is_never_reused(engine, settings):
    """View-in-browser links carry a subscriber id; a new subscriber must never
    inherit the id (and so the old links) of a deleted one."""
    from digest import subscriptions

    first = subscriptions.subscribe(engine, settings, "ada@example.org", "diffusion")
    store.delete_subscriber(engine, "ada@example.org")
    second = subscriptions.subscribe(engine, settings, "bob@example.org", "diffusion")
    assert second.id != first.id
