"""`digest demo`: the whole product on an embedded default, through the real command."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path


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
