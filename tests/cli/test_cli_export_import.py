"""`digest export` and `digest import`: a round trip into a fresh database gives the
same `digest subscribers --json`; hostile files are refused row by row."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import clean_exit, digest_init, strict_json, wait_for
from sqlalchemy import event, text
from sqlmodel import Session

from digest import store, subscriptions
from digest.config import load_settings
from digest.models import utcnow
from digest.states import SubscriberStatus
from digest.subscriber_files import ImportOptions, import_stream, write_export


@pytest.fixture
def pg_env(env: dict[str, str], postgres_url: str) -> dict[str, str]:
    """`env` on a fresh PostgreSQL database, made by `digest init`."""
    pg = {**env, "DIGEST_DATABASE_URL": postgres_url}
    digest_init(pg)
    return pg


def populate(env: dict[str, str]) -> None:
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    rows = [
        ("ada@example.org", "-survey diffusion", {"frequency": "weekly", "weekday": "fri"}),
        ("bob@example.org", '=HYPERLINK("x"), @agents, +robots', {"timezone": "Asia/Tokyo"}),
        ("cy@example.org", '"reinforcement learning"\tAND robot*', {"min_score": 1.5}),
        ("dee@example.org", "Schölkopf, «quoted» 中文", {"max_papers": 7, "send_at": "23:59"}),
    ]
    for email, keywords, fields in rows:
        subscriptions.subscribe(engine, settings, email, keywords, **fields)
    store.update_subscriber(engine, "cy@example.org", status="unsubscribed")
    store.update_subscriber(engine, "dee@example.org", status="suspended", bounces=4)
    store.update_subscriber(engine, "bob@example.org", status="pending", confirmed_at=None)
    engine.dispose()


def fresh_env(env: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    other = {**env, "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / name}"}
    digest_init(other)
    return other


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_then_import_into_a_fresh_database_is_identical(cli, env, tmp_path, fmt):
    populate(env)
    before = cli("subscribers", "--json")
    path = tmp_path / f"subs.{fmt}"
    clean_exit(cli("export", str(path)), 0)
    clean_exit(cli("export", str(path)), 2)  # no silent overwrite
    other = fresh_env(env, tmp_path, f"fresh-{fmt}.db")
    dry = cli("import", str(path), "--dry-run", "--json", extra_env=other)
    clean_exit(dry, 0)
    assert json.loads(dry.stdout)["imported"] == 4
    assert strict_json(cli("subscribers", "--json", extra_env=other).stdout) == []
    clean_exit(cli("import", str(path), extra_env=other), 0)
    after = cli("subscribers", "--json", extra_env=other)
    assert strict_json(after.stdout) == strict_json(before.stdout)
    assert len(strict_json(after.stdout)) == 4
    # again: every address is known now, skipped and reported
    again = cli("import", str(path), "--json", extra_env=other)
    clean_exit(again, 0)
    assert json.loads(again.stdout)["skipped_existing"] == 4


def test_csv_export_guards_formula_cells(cli, env, tmp_path):
    populate(env)
    path = tmp_path / "subs.csv"
    clean_exit(cli("export", str(path)), 0)
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    keywords = {r["email"]: r["keywords"] for r in rows}
    assert keywords["bob@example.org"].startswith("'=HYPERLINK")
    assert keywords["ada@example.org"] == "'-survey diffusion"
    for row in rows:  # no text cell a spreadsheet would run
        assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values())


def run_import(env, text: str, fmt: str = "csv", **options) -> tuple:
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    report = import_stream(engine, settings, io.StringIO(text), fmt, ImportOptions(**options))
    rows = {s.email: s for s in store.list_subscribers(engine)}
    engine.dispose()
    return report, rows


def test_bad_rows_are_reported_by_line_and_the_good_ones_imported(env):
    text = (
        "email,keywords,status,max_papers,timezone\r\n"
        "good@example.org,diffusion,active,5,UTC\r\n"
        "not-an-address,diffusion,active,5,UTC\r\n"
        "bad-profile@example.org,(unclosed AND,active,5,UTC\r\n"
        "bad-status@example.org,diffusion,boss,5,UTC\r\n"
        "bad-number@example.org,diffusion,active,lots,UTC\r\n"
        "bad-zone@example.org,diffusion,active,5,Mars/Olympus\r\n"
        '"crlf@example.org\r\nBcc: x@evil.org",diffusion,active,5,UTC\r\n'
        "short@example.org,diffusion\r\n"
        "GOOD@example.org,robots,active,5,UTC\r\n"
        'second@example.org,"robot*, ""chain of thought""",paused,5,UTC\r\n'
    )
    report, rows = run_import(env, text)
    assert sorted(rows) == ["good@example.org", "second@example.org"]
    assert rows["second@example.org"].status == "paused"
    lines = {e["line"]: e["error"] for e in report.errors}
    assert set(lines) == {3, 4, 5, 6, 7, 8, 10, 11}
    assert "invalid email" in lines[3] and "status" in lines[5] and "max_papers" in lines[6]
    assert "already on line 2" in lines[11]  # a duplicate, however it is spelt
    assert report.imported == 2 and report.error_count == 8


def test_jsonl_hostile_lines(env):
    huge = json.dumps({"email": "huge@example.org", "keywords": "x " * 100_000})
    text = "\n".join(
        [
            '{"email": "ok@example.org", "keywords": "diffusion", "notify_empty": true}',
            "not json",
            "[1, 2]",
            '{"email": 5, "keywords": "diffusion"}',
            '{"email": "n@example.org", "keywords": "diffusion", "min_score": 1e999}',
            huge,
            '{"email": "after@example.org", "keywords": "<script>alert(1)</script>"}',
        ]
    )
    report, rows = run_import(env, text, fmt="jsonl")
    assert sorted(rows) == ["after@example.org", "ok@example.org"]
    assert rows["ok@example.org"].notify_empty is True
    assert {e["line"] for e in report.errors} == {2, 3, 4, 5, 6}


def test_opt_in_flags_and_update(env):
    text = "email,keywords,status\nnew@example.org,diffusion,pending\nold@example.org,gan,unsubscribed\n"
    report, rows = run_import(env, text, opt_in="confirmed")
    assert rows["new@example.org"].status == "active"
    assert rows["new@example.org"].confirmed_at is not None
    assert rows["old@example.org"].status == "unsubscribed"  # never undone by a flag
    changed = "email,keywords,status\nnew@example.org,robots,active\n"
    report, rows = run_import(env, changed, opt_in="pending")
    assert report.skipped_existing == 1 and rows["new@example.org"].keywords == "diffusion"
    report, rows = run_import(env, changed, update=True)
    assert report.updated == 1 and rows["new@example.org"].keywords == "robots"
    report, rows = run_import(env, "email,keywords\nfresh@example.org,gan\n", opt_in="pending")
    assert rows["fresh@example.org"].status == "pending"
    assert rows["fresh@example.org"].confirmed_at is None


def test_invalid_utf8_refuses_the_row_not_the_file(cli, tmp_path):
    path = tmp_path / "subs.csv"
    path.write_bytes(
        b"\xef\xbb\xbfemail,keywords\r\nok@example.org,diffusion\r\nbad@example.org,caf\xe9\r\n"
    )
    res = cli("import", str(path))
    clean_exit(res, 1)
    assert "line 3: keywords: is not valid UTF-8" in res.stderr
    assert [s["email"] for s in strict_json(cli("subscribers", "--json").stdout)] == [
        "ok@example.org"
    ]


def test_format_is_told_or_refused(cli, tmp_path):
    path = tmp_path / "subs.txt"
    path.write_text("email,keywords\n")
    res = cli("import", str(path))
    clean_exit(res, 2)
    assert "--format" in res.stderr


def test_import_never_gives_a_deleted_subscribers_id_to_another_address(env):
    """The bounce and List-Unsubscribe mail tokens name the row id alone: a file row
    keeping the id of a deleted subscriber would receive their late bounces and
    unsubscribe replies. Only ids this database never gave out are kept."""
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    for who in ("ada", "bob"):
        subscriptions.subscribe(engine, settings, f"{who}@example.org", "diffusion")
    bob = store.get_subscriber(engine, "bob@example.org")
    assert bob is not None and bob.id is not None
    assert store.delete_subscriber(engine, "bob@example.org")
    engine.dispose()
    text = (
        json.dumps({"id": bob.id, "email": "mallory@example.org", "keywords": "x"})
        + "\n"
        + json.dumps({"id": 50, "email": "new@example.org", "keywords": "y"})
    )
    report, rows = run_import(env, text, fmt="jsonl")
    assert rows["mallory@example.org"].id not in (bob.id, 50)
    assert rows["new@example.org"].id == 50  # never given out here: kept
    assert report.new_ids == 1


def test_update_never_brings_back_an_unsubscribed_or_suspended_address(env):
    """A stale export imported with --update must not undo an unsubscribe (or a
    suspension for bounces), nor bring back older confirmation links."""
    old = "email,keywords,status,bounces,token_version\n"
    rows_text = "".join(
        f"{who}@example.org,diffusion,active,0,0\n" for who in ("left", "bounced", "plain")
    )
    run_import(env, old + rows_text)
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    store.update_subscriber(
        engine, "left@example.org", status="unsubscribed", unsubscribed_at=utcnow()
    )
    store.update_subscriber(engine, "bounced@example.org", status="suspended", bounces=5)
    store.update_subscriber(engine, "plain@example.org", token_version=3)
    engine.dispose()
    changed = rows_text.replace("diffusion", "robots")
    report, rows = run_import(env, old + changed, update=True)
    assert rows["left@example.org"].status == "unsubscribed"
    assert rows["left@example.org"].unsubscribed_at is not None
    assert rows["bounced@example.org"].status == "suspended"
    assert rows["bounced@example.org"].bounces == 5
    assert rows["left@example.org"].keywords == "robots"  # the rest is updated
    assert rows["plain@example.org"].token_version == 3
    assert report.updated == 3 and report.kept_status == 2


@pytest.mark.postgres
def test_import_on_postgresql_keeps_ids_and_moves_the_sequence(env, postgres_url, tmp_path):
    """The id-sequence handling only runs on PostgreSQL: ids kept from the file, the
    next sign-up above them, and a deleted subscriber's id never given out again
    (not even after an import that inserts nothing)."""
    populate(env)
    source = load_settings(environ=env, env_file=None)
    src = store.make_engine(source.database_url)
    out = io.StringIO()
    write_export(src, out, "jsonl")
    exported = {s.email: s.id for s in store.list_subscribers(src)}
    src.dispose()
    pg_env = {**env, "DIGEST_DATABASE_URL": postgres_url}
    digest_init(pg_env)
    report, rows = run_import(pg_env, out.getvalue(), fmt="jsonl")
    assert report.imported == 4 and report.new_ids == 0
    assert {e: s.id for e, s in rows.items()} == exported
    settings = load_settings(environ=pg_env, env_file=None)
    engine = store.make_engine(settings.database_url)
    late = subscriptions.subscribe(engine, settings, "late@example.org", "gan")
    assert late.id is not None and late.id > max(exported.values())
    assert store.delete_subscriber(engine, "late@example.org")
    engine.dispose()
    report, _ = run_import(pg_env, out.getvalue(), fmt="jsonl")  # inserts nothing
    assert report.skipped_existing == 4
    engine = store.make_engine(settings.database_url)
    later = subscriptions.subscribe(engine, settings, "later@example.org", "gan")
    engine.dispose()
    assert later.id is not None and later.id > late.id


HOSTILE_JSONL = "\n".join(
    [
        '{"email": "deep@example.org", "keywords": "x", "timezone": '
        + "[" * 50_000
        + "]" * 50_000
        + "}",
        json.dumps({"email": "nul@example.org", "keywords": "diff\x00usion"}),
        json.dumps({"email": "big@example.org", "keywords": "x", "bounces": 10**30}),
        json.dumps({"email": "ver@example.org", "keywords": "x", "token_version": 2**40}),
        json.dumps({"email": "top@example.org", "keywords": "x", "id": 2**31 - 1}),
        json.dumps({"email": "ok@example.org", "keywords": "x"}),
    ]
)


def check_hostile_import(env: dict[str, str]) -> None:
    """Each hostile row refused by its line, the rest imported, sign-ups still work."""
    report, rows = run_import(env, HOSTILE_JSONL, fmt="jsonl")
    errors = {e["line"]: e["error"] for e in report.errors}
    assert set(errors) == {1, 2, 3, 4}
    assert "nested" in errors[1] and "NUL" in errors[2] and "range" in errors[3]
    assert sorted(rows) == ["ok@example.org", "top@example.org"]
    top = rows["top@example.org"].id
    assert top is not None and top < 2**31 - 1  # the id sequence keeps its room
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    after = subscriptions.subscribe(engine, settings, "after@example.org", "gan")
    engine.dispose()
    assert after.id is not None and after.id > top


def test_hostile_jsonl_values_are_refused_by_line(env):
    check_hostile_import(env)


@pytest.mark.postgres
def test_hostile_jsonl_values_are_refused_by_line_on_postgresql(pg_env):
    check_hostile_import(pg_env)


def test_csv_line_numbers_stay_right_after_an_over_long_line(env):
    text = (
        "email,keywords\r\n"
        f"long@example.org,{'x' * 200_000}\r\n"
        "nul@example.org,a\x00b\r\n"
        "ok@example.org,fine\r\n"
    )
    report, rows = run_import(env, text)
    assert {e["line"]: e["error"][:12] for e in report.errors} == {
        2: "longer than ",
        3: "keywords: co",
    }
    assert sorted(rows) == ["ok@example.org"]


def test_update_overwrites_only_the_fields_the_file_has(env):
    """`fix.csv --update` with `email,keywords` fixes the profile; the schedule, the
    watermark, the dates and the opt-in state stay (they are not sign-up defaults)."""
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    subscriptions.subscribe(
        engine, settings, "bob@example.org", "gan", frequency="weekly", weekday="fri"
    )
    store.update_subscriber(
        engine, "bob@example.org", status="paused", notify_empty=True, complaints=1
    )
    before = store.get_subscriber(engine, "bob@example.org")
    engine.dispose()
    assert before is not None
    report, rows = run_import(
        env, "email,keywords\nbob@example.org,robots\n", update=True, opt_in="confirmed"
    )
    after = rows["bob@example.org"]
    assert report.updated == 1 and after.keywords == "robots"
    for name in ("frequency", "weekday", "notify_empty", "status", "complaints", "created_at"):
        assert getattr(after, name) == getattr(before, name), name
    assert after.confirmed_at == before.confirmed_at


RACE_FILE = "email,keywords\r\nrace@example.org,transformers\r\ncalm@example.org,gan\r\n"


def import_racing_a_sign_up(env: dict[str, str], update: bool) -> tuple:
    """`digest import` of RACE_FILE while race@example.org signs up on the web, at
    the worst moment: after the import read which addresses are stored, before it
    inserts. The sign-up is the web's own store call on a second engine (its own
    connection), run from the importer's hook on its first INSERT."""
    settings = load_settings(environ=env, env_file=None)
    importer = store.make_engine(settings.database_url)
    web = store.make_engine(settings.database_url)
    signed: list[str] = []

    def sign_up_first(conn, cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO SUBSCRIBER") and not signed:
            signed.append("race@example.org")
            pending = subscriptions.new_subscriber(
                settings, "race@example.org", "diffusion", status=SubscriberStatus.PENDING
            )
            store.store_signup(web, pending)

    event.listen(importer, "before_cursor_execute", sign_up_first)
    try:
        report = import_stream(
            importer, settings, io.StringIO(RACE_FILE), "csv", ImportOptions(update=update)
        )
        rows = [(s.email, s.status, s.keywords) for s in store.list_subscribers(web)]
    finally:
        importer.dispose()
        web.dispose()
    assert signed  # the sign-up did run inside the import's window
    return report, sorted(rows)


def check_import_racing_a_sign_up(env: dict[str, str]) -> None:
    report, rows = import_racing_a_sign_up(env, update=False)
    assert (report.imported, report.skipped_existing, report.signed_up) == (1, 1, 1)
    assert rows == [
        ("calm@example.org", "active", "gan"),
        ("race@example.org", "pending", "diffusion"),  # the sign-up, as it was made
    ]


def test_import_racing_a_sign_up_keeps_one_subscriber(env):
    check_import_racing_a_sign_up(env)


@pytest.mark.postgres
def test_import_racing_a_sign_up_keeps_one_subscriber_on_postgresql(pg_env):
    check_import_racing_a_sign_up(pg_env)


def test_import_update_racing_a_sign_up_updates_the_sign_up(env):
    report, rows = import_racing_a_sign_up(env, update=True)
    assert (report.imported, report.updated, report.signed_up) == (1, 1, 1)
    assert [r for r in rows if r[0] == "race@example.org"] == [
        # --update: the fields the file has (no status: the sign-up stays pending)
        ("race@example.org", "pending", "transformers")
    ]


@pytest.mark.postgres
def test_digest_import_waiting_on_an_open_sign_up_reports_it(pg_env, tmp_path):
    """A real race through the command: a sign-up's transaction holds
    race@example.org uncommitted, so `digest import` (its own process) reads the
    address as new and its insert waits on that row; the sign-up then commits. The
    import ends with exit 0, one subscriber for the address and a note, not an
    IntegrityError traceback."""
    settings = load_settings(environ=pg_env, env_file=None)
    engine = store.make_engine(settings.database_url)
    path = tmp_path / "race.csv"
    path.write_text(RACE_FILE, encoding="utf-8")
    try:
        with Session(engine) as signup:
            signup.add(
                subscriptions.new_subscriber(
                    settings, "race@example.org", "diffusion", status=SubscriberStatus.PENDING
                )
            )
            signup.flush()  # written, not committed: the row's unique key is held
            proc = subprocess.Popen(
                [sys.executable, "-m", "digest", "import", str(path)],
                env=pg_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

            def import_waits_on_the_sign_up() -> bool:
                with engine.connect() as conn:
                    waiting = conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                            "'Lock' AND query LIKE 'INSERT INTO subscriber%'"
                        )
                    ).scalar()
                return bool(waiting) or proc.poll() is not None

            wait_for(import_waits_on_the_sign_up, timeout=60)
            assert proc.poll() is None, proc.communicate()
            signup.commit()
        out, err = proc.communicate(timeout=60)
        rows = sorted((s.email, s.status) for s in store.list_subscribers(engine))
    finally:
        engine.dispose()
    assert proc.returncode == 0 and "Traceback" not in err, (out, err)
    assert "imported 1, updated 0, skipped 1 already stored" in out
    assert "note: 1 address(es) of the file signed up while this import ran" in err
    assert rows == [("calm@example.org", "active"), ("race@example.org", "pending")]
