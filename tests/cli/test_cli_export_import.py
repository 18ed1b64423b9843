"""`digest export` and `digest import`: a round trip into a fresh database gives the
same `digest subscribers --json`; hostile files are refused row by row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import clean_exit, digest_init, strict_json

from digest import store, subscriptions
from digest.config import load_settings
from digest.subscriber_files import ImportOptions, import_stream


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
