"""Issue 16 item 8: a sign-up is stored before it is answered (a failed write is an
error page, never an accepted and lost sign-up), and /healthz checks that the
database takes writes, answering 503 `degraded` with a reason when not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from web_served import served, sign_up

from digest import store

FULL = "CREATE TRIGGER disk_full BEFORE INSERT ON subscriber BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"


def db_file(settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def test_a_failed_write_is_an_error_page_and_healthz_is_degraded(settings, engine, smtp_sink):
    """Every insert of a subscriber fails, as on a full disk; reads still work."""
    with served(settings, engine, signup_limit_per_ip=1000) as base:
        client = httpx.Client(base_url=base)
        assert client.get("/healthz").json() == {"status": "ok"}
        with sqlite3.connect(db_file(settings)) as conn:
            conn.execute(FULL)

        page = sign_up(client, "ada@example.org")
        assert page.status_code == 503 and "Back in a moment" in page.text
        assert "nothing was changed" in page.text
        api = client.post("/api/subscriptions", json={"email": "bo@example.org", "keywords": "x"})
        assert api.status_code == 503 and "unavailable" in api.json()["error"]
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json() == {"status": "degraded", "reason": "the database refuses writes"}
        assert store.list_subscribers(engine) == []
        assert smtp_sink.messages() == []

        with sqlite3.connect(db_file(settings)) as conn:
            conn.execute("DROP TRIGGER disk_full")
        assert client.get("/healthz").json() == {"status": "ok"}
        assert sign_up(client, "ada@example.org").status_code == 303
        assert store.get_subscriber(engine, "ada@example.org").status == "pending"  # stored


def test_a_corrupt_database_file(settings, tmp_path, smtp_sink):
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database, just garbage " * 200)
    url = f"sqlite:///{path}"
    engine = store.make_engine(url)
    try:
        with served(settings, engine, database_url=url, signup_limit_per_ip=1000) as base:
            client = httpx.Client(base_url=base)
            health = client.get("/healthz")
            assert health.status_code == 503 and health.json()["status"] == "degraded"
            assert health.json()["reason"]
            page = sign_up(client, "ada@example.org")  # the page renders without a database
            assert page.status_code == 503 and "Back in a moment" in page.text
    finally:
        engine.dispose()
    assert smtp_sink.messages() == []
