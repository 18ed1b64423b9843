"""Regression tests from a hands-on review of the command line, the store, the file
source and the demo: hostile input anywhere gives a clear line and the right exit
code, never a traceback, and never loses the good data beside it."""

from __future__ import annotations

import json
import smtplib
from pathlib import Path
from typing import Any

import pytest

from digest import cli as cli_module
from digest import store
from digest.config import Settings
from digest.demo import run_demo
from digest.errors import ConfigError, InputError, SourceError
from digest.smtp_sink import SmtpSink
from digest.sources.file import FileSource


def strict_json(text: str) -> Any:
    """Parse as standard JSON: `NaN` / `Infinity` are not JSON and must never appear."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def clean_exit(res, code: int) -> None:
    assert res.code == code, (res.code, res.stdout[-2000:], res.stderr[-2000:])
    assert "Traceback" not in res.stderr


# ---------------------------------------------------------------- listings


def test_min_score_must_be_a_finite_non_negative_number(cli):
    # inf was stored and `subscribers --json` then printed `Infinity`: not JSON.
    res = cli("subscribe", "ada@example.org", "--keywords", "diffusion", "--min-score=nan")
    clean_exit(res, 2)
    assert "--min-score" in res.stderr
    clean_exit(cli("subscribe", "ada@example.org", "--keywords", "diffusion"), 0)
    clean_exit(cli("set", "ada@example.org", "--min-score=inf"), 2)
    clean_exit(cli("set", "ada@example.org", "--min-score=-1"), 2)
    clean_exit(cli("set", "ada@example.org", "--min-score=0.5"), 0)
    rows = strict_json(cli("subscribers", "--json").stdout)
    assert [r["min_score"] for r in rows] == [0.5]


def test_listings_show_markup_literally_and_print_one_strict_json_array(cli):
    # `[/red]` in a profile made rich raise MarkupError while drawing the table.
    clean_exit(cli("subscribe", "ada@example.org", "--keywords", "[/red] language"), 0)
    res = cli("subscribers", extra_env={"COLUMNS": "200"})
    clean_exit(res, 0)
    assert "[/red] language" in res.stdout
    # A huge --limit overflowed SQLite's integer and crashed with a traceback.
    clean_exit(cli("papers", "--limit", "99999999999999999999999"), 2)
    for args in (
        ["fetch", "--json"],
        ["papers", "--json", "--since", "2000-01-01", "--limit", "3"],
        ["subscribers", "--json"],
        ["check-query", "language", "--json", "--since", "2000-01-01"],
    ):
        res = cli(*args)
        clean_exit(res, 0)
        data = strict_json(res.stdout)
        assert isinstance(data, list) and data, args


# ---------------------------------------------------------------- the database


def test_a_database_that_cannot_be_opened_is_one_line_naming_the_key(cli):
    res = cli("init", extra_env={"DIGEST_DATABASE_URL": "sqlite:////proc/no-such-dir/d.db"})
    clean_exit(res, 2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: DIGEST_DATABASE_URL: ")


@pytest.mark.parametrize(
    "url", ["sqlite:////etc/hostname", "nosuchdb://x/y", "mysql://u:pw@127.0.0.1:1/d"]
)
def test_a_database_url_that_cannot_be_used_is_a_config_error(url):
    # Not a database, an unknown dialect, a driver not installed.
    with pytest.raises(ConfigError, match="^DIGEST_DATABASE_URL: "):
        cli_module._engine(Settings(database_url=url))


def test_an_unreachable_database_server_exits_1_without_showing_the_password(cli):
    # 1, not 2: a server that is down may come back, so cron and systemd retry.
    url = "postgresql+psycopg://digest:s3cret-pw@127.0.0.1:1/digest"
    res = cli("papers", extra_env={"DIGEST_DATABASE_URL": url})
    clean_exit(res, 1)
    assert "DIGEST_DATABASE_URL" in res.stderr and "127.0.0.1" in res.stderr
    assert "s3cret-pw" not in res.stderr


def test_shown_url_masks_only_the_password():
    assert store.shown_url("postgresql+psycopg://u:pw@db/x") == "postgresql+psycopg://u:***@db/x"
    assert store.shown_url("sqlite:///x[1].db") == "sqlite:///x[1].db"


def test_a_dotenv_file_that_is_not_text_is_a_config_error(cli, tmp_path: Path):
    (tmp_path / ".env").write_bytes(b"\xff\xfe\x00garbage\n")
    res = cli("papers")
    clean_exit(res, 2)
    assert ".env" in res.stderr


def test_a_source_error_holding_markup_is_printed_by_run_and_status(cli, tmp_path: Path):
    # The path becomes the error text; `[/]` in it crashed rich in `run` and `status`.
    missing = tmp_path / "[" / "]nope.jsonl"
    env = {"DIGEST_SOURCES": f"file:{missing}"}
    res = cli("run", "--dry-run", extra_env=env)
    clean_exit(res, 1)
    assert "failed" in res.stderr and "]nope.jsonl" in res.stderr
    clean_exit(cli("status", extra_env=env), 0)


def test_a_folder_the_system_refuses_is_one_line_not_a_traceback(cli):
    clean_exit(cli("subscribe", "ada@example.org", "--keywords", "language"), 0)
    env = {"DIGEST_TRANSPORT": "file", "DIGEST_OUTBOX_DIR": "/proc/no-such-dir/outbox"}
    res = cli("run", "--now", extra_env=env)
    assert res.code in (1, 2) and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "/proc/no-such-dir" in res.stderr


# ---------------------------------------------------------------- the file source


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def good(pid: str) -> bytes:
    return json.dumps({"id": pid, "title": f"Good paper {pid}"}).encode()


def test_hostile_lines_are_skipped_one_by_one_and_the_good_ones_kept(cli, tmp_path: Path):
    feed = write_lines(
        tmp_path / "hostile.jsonl",
        [
            b"\xef\xbb\xbf" + good("bom-first"),  # a byte-order mark: still line 1
            b"[" * 100_000,  # RecursionError used to fail the whole source
            json.dumps({"id": "big", "title": "Huge", "upvotes": 10**30}).encode(),
            good("middle"),
            json.dumps({"id": "neg", "title": "Negative", "upvotes": -5}).encode(),
            json.dumps({"id": {"a": 1}, "title": "Object id"}).encode(),
            json.dumps({"id": "x" * 300, "title": "Id too long to keep apart"}).encode(),
            json.dumps({"id": "js", "title": "Bad link", "code_url": "javascript:x"}).encode(),
            good("last"),
        ],
    )
    res = cli("fetch", "--json", extra_env={"DIGEST_SOURCES": f"file:{feed}"})
    clean_exit(res, 0)
    report = strict_json(res.stdout)[0]
    assert report["new"] == 3 and not report["failed"]
    for n in (2, 3, 5, 6, 7, 8):
        assert any(f"line {n}:" in e for e in report["errors"]), (n, report["errors"])
    assert any("code_url" in e for e in report["errors"])
    stored = {p["id"] for p in strict_json(cli("papers", "--json").stdout)}
    assert stored == {"bom-first", "middle", "last"}


def test_a_file_with_no_readable_line_is_a_failed_source(tmp_path: Path):
    # The wrong file (here a passwd-like one) used to "succeed" with 0 papers, exit 0.
    feed = write_lines(tmp_path / "wrong.jsonl", [b"root:x:0:0::/root:/bin/sh", b"{nope"])
    with pytest.raises(SourceError, match="none of the 2"):
        FileSource(feed).fetch({})


def test_file_source_counts_are_bounded_in_process(tmp_path: Path):
    feed = write_lines(
        tmp_path / "n.jsonl",
        [
            json.dumps({"id": "a", "title": "A", "upvotes": "99999999999"}).encode(),
            json.dumps({"id": "b", "title": "B", "upvotes": "999999999999"}).encode(),
            json.dumps({"id": 7, "title": "Numeric id"}).encode(),
        ],
    )
    batch = FileSource(feed).fetch({})
    assert [(r.id, r.upvotes) for r in batch.records] == [("a", 99999999999), ("7", None)]
    assert len(batch.warnings) == 1 and "line 2" in batch.warnings[0]


# ---------------------------------------------------------------- demo


def test_demo_with_an_unusable_outbox_is_a_usage_error(tmp_path: Path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="--outbox"):
        run_demo(tmp_path / "afile")


def test_demo_leaves_no_database_behind(cli, tmp_path: Path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    res = cli("demo", extra_env={"TMPDIR": str(scratch)})
    clean_exit(res, 0)
    assert "digests sent:    3" in res.stdout
    assert list(scratch.iterdir()) == []
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3


# ---------------------------------------------------------------- the SMTP sink


def test_sink_numbers_after_the_highest_message_already_there(tmp_path: Path):
    folder = tmp_path / "outbox"
    folder.mkdir()
    (folder / "000001-a@example.org.eml").write_bytes(b"old 1")
    (folder / "000003-b@example.org.eml").write_bytes(b"old 3")  # 000002 was deleted
    with SmtpSink(folder) as sink, smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
        smtp.sendmail("d@example.org", ["b@example.org"], b"Subject: new\r\n\r\nnew\r\n")
    names = sorted(p.name for p in folder.glob("*.eml"))
    assert names == [
        "000001-a@example.org.eml",
        "000003-b@example.org.eml",
        "000004-b@example.org.eml",
    ]
    assert (folder / "000003-b@example.org.eml").read_bytes() == b"old 3"
