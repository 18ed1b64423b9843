"""Issue 16 item 8: a sign-up is stored before it is answered (a failed write is an
error page, never an accepted and lost sign-up), and /healthz checks that the
database takes writes, answering 503 `degraded` with a reason when not."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import event
from web_served import served, sign_up

from digest import store
from digest.subscriptions import new_subscriber
from digest.web import create_app

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


def statements_of(engine, action) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001
        seen.append(re.sub(r"\s+", " ", statement))

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_storing_costs_the_same_statements_for_new_and_known_addresses(settings, engine):
    """What now runs before the answer writes one row whatever the address, so the
    response time still does not tell a known address from a new one."""
    store.add_subscriber(
        engine, new_subscriber(settings, "known@example.org", "robots", status="active")
    )
    accounts = create_app(settings, engine).state.web.accounts

    def register(address: str) -> Callable[[], object]:
        return lambda: accounts.register(new_subscriber(settings, address, "x", status="pending"))

    new = statements_of(engine, register("new@example.org"))
    known = statements_of(engine, register("known@example.org"))
    assert new == known
    assert any(s.startswith("INSERT INTO subscriber") for s in new)
    assert store.get_subscriber(engine, "known@example.org").keywords == "robots"
    assert store.get_subscriber(engine, "new@example.org").status == "pending"


def test_store_signup_on_postgresql(settings, postgres_url):
    """The one-statement upsert on PostgreSQL: new, pending (replaced), confirmed
    (left alone) and unsubscribed (started again) addresses."""
    engine = store.make_engine(postgres_url)
    store.init_db(engine)
    try:

        def sign(address: str, keywords: str):
            return store.store_signup(
                engine, new_subscriber(settings, address, keywords, status="pending")
            )

        first = sign("ada@example.org", "diffusion")
        assert (first.status, first.token_version) == ("pending", 0)
        again = sign("ada@example.org", "robots")
        assert (again.id, again.keywords, again.token_version) == (first.id, "robots", 1)
        store.update_subscriber(engine, "ada@example.org", status="active")
        kept = sign("ada@example.org", "crypto")
        assert (kept.status, kept.keywords, kept.token_version) == ("active", "robots", 1)
        store.update_subscriber(engine, "ada@example.org", status="unsubscribed")
        back = sign("ada@example.org", "agents")
        assert (back.status, back.keywords, back.token_version) == ("pending", "agents", 2)
        store.delete_subscriber(engine, "ada@example.org")
        assert sign("ada@example.org", "x").id != first.id  # ids are never reused
        store.probe_write(engine)
        assert [s.email for s in store.list_subscribers(engine)] == ["ada@example.org"]
    finally:
        engine.dispose()
