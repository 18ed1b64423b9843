"""Versioned migrations: a database from 0.1.0 is adopted with every row kept, the
migrations make exactly the schema the models describe (SQLite and PostgreSQL), they
go down and up again, and concurrent start-ups upgrade once."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from conftest import FIXTURES
from sqlalchemy import inspect as sa_inspect
from sqlmodel import SQLModel

from digest import store
from digest.models import utcnow
from digest.scheduler import JOBS_TABLE
from digest.store.legacy import SCHEMA_0_1_0, legacy_metadata
from digest.store.migrate import MIGRATIONS, include_name

LEGACY = FIXTURES / "db" / "legacy-0.1.0.db"
TABLES = ("paper", "subscriber", "digest", "digestmessage", "sourcestate", "rateevent")


def table_contents(db: Path, columns_of: Path | None = None) -> dict[str, list[tuple]]:
    """Every row of every table (alembic's own left out), in a stable order; with
    `columns_of`, only the columns that database's tables have (later revisions add
    columns: the rows that were there must keep every value they had)."""

    def columns(conn: sqlite3.Connection, table: str) -> str:
        return ", ".join(f'"{r[1]}"' for r in conn.execute(f'PRAGMA table_info("{table}")'))

    with sqlite3.connect(db) as conn:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] != "alembic_version"
        ]
        picked = {n: "*" for n in names}
        if columns_of is not None:
            with sqlite3.connect(columns_of) as ref:
                picked = {n: columns(ref, n) or "*" for n in names}
        return {n: sorted(conn.execute(f'SELECT {picked[n]} FROM "{n}"').fetchall()) for n in names}


def schema_diff(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        return compare_metadata(context, SQLModel.metadata)


def test_head_constant_is_the_newest_script():
    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == store.HEAD


def test_a_database_from_0_1_0_is_adopted_with_every_row_kept(tmp_path, cli, smtp_sink):
    db = tmp_path / "digest.db"  # the database the `cli` fixture's environment names
    shutil.copy(LEGACY, db)
    before = table_contents(db)
    assert {t: len(before[t]) for t in TABLES} == {
        "paper": 50,
        "subscriber": 5,
        "digest": 4,
        "digestmessage": 3,
        "sourcestate": 1,
        "rateevent": 1,
    }

    res = cli("init")
    assert res.code == 0, res.stderr
    assert "".join(res.stdout.split()) == f"databaseready:sqlite:///{db}"  # maybe wrapped
    assert {t: rows for t, rows in table_contents(db, LEGACY).items() if t in before} == before

    current = cli("db", "current", "--json")
    assert current.code == 0, current.stderr
    assert json.loads(current.stdout) == {
        "revision": store.HEAD,
        "head": store.HEAD,
        "at_head": True,
        "known": True,
    }

    listed = cli("subscribers", "--json")
    assert listed.code == 0, listed.stderr
    emails = sorted((s["email"], s["status"]) for s in json.loads(listed.stdout))
    with sqlite3.connect(db) as conn:
        stored = sorted(conn.execute("SELECT email, status FROM subscriber").fetchall())
    assert emails == stored and len(emails) == 5

    run = cli("run", "--now")
    assert run.code == 0, run.stdout + run.stderr
    after = table_contents(db, LEGACY)
    for table in TABLES:  # the run adds rows; it never changes what was there
        kept = [r for r in before[table] if table not in ("subscriber", "sourcestate", "paper")]
        assert set(kept) <= set(after[table]), table
    assert {r[1] for r in after["subscriber"]} == {r[1] for r in before["subscriber"]}


def test_the_adopted_0_1_0_schema_is_the_migrations_schema(tmp_path):
    db = tmp_path / "legacy.db"
    shutil.copy(LEGACY, db)
    engine = store.make_engine(f"sqlite:///{db}")
    store.init_db(engine)
    assert store.current_revision(engine) == store.HEAD
    assert schema_diff(engine) == []
    engine.dispose()


def test_a_database_of_another_program_is_refused_and_left_alone(tmp_path, cli):
    """Tables named like ours without digest's key columns: not adopted, not altered."""
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE subscriber (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO subscriber (name) VALUES ('someone else''s row')")
    before = table_contents(db)
    for command in (("init",), ("subscribers", "--json"), ("db", "upgrade")):
        res = cli(*command, extra_env={"DIGEST_DATABASE_URL": f"sqlite:///{db}"})
        assert res.code == 2, (command, res.stdout, res.stderr)
        assert "not made by digest" in res.stderr and "Traceback" not in res.stderr
    assert table_contents(db) == before
    with sqlite3.connect(db) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(subscriber)")]
    assert columns == ["id", "name"]


def test_adoption_adds_only_the_0_1_0_columns():
    """Columns a later revision adds are that revision's to add, after the stamp."""
    frozen = legacy_metadata()
    assert {t: {c.name for c in frozen.tables[t].columns} for t in frozen.tables} == {
        t: set(cols) for t, cols in SCHEMA_0_1_0.items()
    }


def test_models_and_migrations_agree_on_sqlite(tmp_path):
    engine = store.make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    store.upgrade(engine)
    assert store.current_revision(engine) == store.HEAD
    assert schema_diff(engine) == []
    engine.dispose()


@pytest.mark.postgres
def test_models_and_migrations_agree_on_postgresql(postgres_url):
    engine = store.make_engine(postgres_url)
    store.upgrade(engine)
    assert store.current_revision(engine) == store.HEAD
    assert schema_diff(engine) == []
    engine.dispose()


def test_the_scheduler_job_table_is_not_a_schema_difference(tmp_path):
    """APScheduler keeps its jobs in a table of its own in our database: the models
    and the migrations still agree, and an upgrade leaves that table alone."""
    engine = store.make_engine(f"sqlite:///{tmp_path / 'served.db'}")
    store.upgrade(engine)
    jobstore = SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)
    jobstore.start(BackgroundScheduler(timezone="UTC"), "default")
    jobstore.shutdown()
    assert JOBS_TABLE in sa_inspect(engine).get_table_names()
    with engine.connect() as conn:
        unfiltered = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    # what the filter is for: unfiltered, Alembic would drop the job table
    assert ("remove_table", JOBS_TABLE) in [(d[0], getattr(d[1], "name", None)) for d in unfiltered]
    assert schema_diff(engine) == []
    store.upgrade(engine)
    assert JOBS_TABLE in sa_inspect(engine).get_table_names()
    engine.dispose()


def _down_and_up(engine) -> None:
    store.upgrade(engine)
    store.downgrade(engine, "base")
    assert store.current_revision(engine) is None
    assert set(sa_inspect(engine).get_table_names()) <= {"alembic_version"}
    store.upgrade(engine)
    assert store.current_revision(engine) == store.HEAD
    assert schema_diff(engine) == []


def test_upgrade_downgrade_upgrade_on_sqlite(tmp_path):
    engine = store.make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    _down_and_up(engine)
    engine.dispose()


@pytest.mark.postgres
def test_upgrade_downgrade_upgrade_on_postgresql(postgres_url):
    engine = store.make_engine(postgres_url)
    _down_and_up(engine)
    engine.dispose()


def _start_together(env: dict[str, str], cwd: Path, commands: list[list[str]]) -> list:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "digest", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    return [(p.wait(timeout=120), *p.communicate()) for p in procs]


def test_two_processes_initialising_a_new_sqlite_file_both_succeed(tmp_path, env, cli):
    # A new file (the `cli` fixture's is made already); only `init` may create one.
    fresh = {"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    results = _start_together({**env, **fresh}, tmp_path, [["init"], ["init"], ["init"]])
    for code, _out, stderr in results:
        assert code == 0, stderr
    current = cli("db", "current", "--json", extra_env=fresh).stdout
    assert current.count('"at_head": true') == 1


@pytest.mark.postgres
def test_two_processes_initialising_a_new_postgresql_database_both_succeed(
    tmp_path, env, postgres_url
):
    env = {**env, "DIGEST_DATABASE_URL": postgres_url}
    results = _start_together(env, tmp_path, [["init"], ["init"], ["subscribers", "--json"]])
    for code, _out, stderr in results:
        assert code == 0, stderr
    engine = store.make_engine(postgres_url)
    assert store.current_revision(engine) == store.HEAD
    engine.dispose()


def test_db_commands(tmp_path, cli):
    fresh = {"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    missing = cli("db", "current", extra_env=fresh)  # only init and db upgrade create one
    assert missing.code == 2 and "no database at" in missing.stderr
    up = cli("db", "upgrade", extra_env=fresh)
    assert (up.code, up.stdout.strip()) == (0, f"database at {store.HEAD}")
    assert cli("db", "downgrade", "base", "--yes", extra_env=fresh).code == 0
    empty = cli("db", "current", extra_env=fresh)
    assert empty.code == 0, empty.stderr
    assert empty.stdout.startswith(f"none (behind head {store.HEAD})")
    up = cli("db", "upgrade", extra_env=fresh)
    assert (up.code, up.stdout.strip()) == (0, f"database at {store.HEAD}")
    with sqlite3.connect(tmp_path / "fresh.db") as conn:  # as a newer digest leaves it
        conn.execute("UPDATE alembic_version SET version_num = '0999'")
    newer = cli("db", "current", extra_env=fresh)
    assert newer.code == 0 and "0999 (unknown to this digest" in newer.stdout
    assert json.loads(cli("db", "current", "--json", extra_env=fresh).stdout)["known"] is False
    refused = cli("subscribers", extra_env=fresh)
    assert refused.code == 2 and "Traceback" not in refused.stderr, refused.stderr
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (store.HEAD,))
    history = json.loads(cli("db", "history", "--json", extra_env=fresh).stdout)
    assert history[0] == {
        "revision": store.HEAD,
        "down_revision": history[0]["down_revision"],
        "message": history[0]["message"],
        "current": True,
        "head": True,
    }
    assert history[-1]["down_revision"] is None
    assert all(r["message"] for r in history)
    text_history = cli("db", "history", extra_env=fresh)
    assert text_history.stdout.startswith(f"{store.HEAD} (head, current)")


def test_an_unknown_revision_is_one_line_and_exit_2(cli):
    odd = ("nope", "head+1", "@", "x" * 5000)
    upgrades = [("db", "upgrade", r) for r in (*odd, "", "0001-1", "head-99")]
    cases = upgrades + [("db", "downgrade", r, "--yes") for r in odd]
    for args in cases:
        res = cli(*args)
        assert res.code == 2
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1
        assert "Traceback" not in res.stderr and len(res.stderr) < 400, args
        assert args[2][:80] in res.stderr


def test_a_downgrade_says_what_it_would_drop_and_needs_yes(cli):
    assert cli("subscribe", "ada@example.org", "-k", "diffusion").code == 0
    res = cli("db", "downgrade", "base")
    assert res.code == 2 and "--yes" in res.stderr and "1 subscriber" in res.stderr
    assert "Traceback" not in res.stderr
    listed = cli("subscribers", "--json")
    assert listed.code == 0 and "ada@example.org" in listed.stdout  # nothing dropped


def test_a_database_from_a_newer_digest_is_one_clear_line(tmp_path, cli):
    assert cli("init").code == 0
    with sqlite3.connect(tmp_path / "digest.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    res = cli("subscribers")
    assert res.code == 2
    assert res.stderr.count("\n") == 1 and "revision 9999" in res.stderr
    assert "Traceback" not in res.stderr


def test_0006_keeps_the_sent_counter_of_a_database_with_data(tmp_path):
    """0.1.0 data (two sent digests) upgraded to 0005, then to head: the tally table
    comes empty, the counter starts from the stored rows, and deleting a subscriber
    with a sent digest no longer takes it back; down to 0005 drops only the table."""
    db = tmp_path / "legacy.db"
    shutil.copy(LEGACY, db)
    engine = store.make_engine(f"sqlite:///{db}")
    try:
        store.upgrade(engine, "0005")
        assert "digesttally" not in sa_inspect(engine).get_table_names()
        store.ensure_schema(engine)  # what any command does on start-up
        assert store.current_revision(engine) == store.HEAD == "0006"
        assert schema_diff(engine) == []

        def sent() -> int:
            return store.metrics_snapshot(engine, utcnow(), (1.0,), "2000-01-01").digests_sent

        assert sent() == 2  # ada's and cyd's
        assert store.delete_subscriber(engine, "ada@example.org")
        assert sent() == 2
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT status, count FROM digesttally").fetchall() == [("sent", 1)]
        store.downgrade(engine, "0005")
        assert "digesttally" not in sa_inspect(engine).get_table_names()
        assert {"subscriber", "digest", "inboundtally"} <= set(sa_inspect(engine).get_table_names())
    finally:
        engine.dispose()
