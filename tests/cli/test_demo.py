"""`digest demo`: the whole product on an embedded default, through the real command."""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
from pathlib import Path

import pytest
from conftest import clean_exit

from digest.demo import run_demo
from digest.errors import InputError
from digest.smtp_sink import SmtpSink


def test_demo_delivers_to_the_built_in_sink(cli, tmp_path):
    db = tmp_path / "digest.db"  # the environment's database, made by `digest init`
    untouched = db.stat().st_mtime_ns
    res = cli("demo")
    assert res.code == 0, res.stderr
    emls = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(emls) == 3
    assert "papers loaded:   50" in res.stdout
    assert "digests sent:    3" in res.stdout
    match = re.search(r"open this digest: (\S+\.html)", res.stdout)
    assert match, res.stdout
    html = Path(match.group(1)).read_text(encoding="utf-8")
    assert "<html" in html.lower()
    msg = email.message_from_bytes(emls[0].read_bytes(), policy=email.policy.default)
    assert msg.get_body(preferencelist=("plain",)) is not None
    assert db.stat().st_mtime_ns == untouched  # the demo's database is its own, thrown away


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
