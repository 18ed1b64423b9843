"""Issue 16 item 4: a huge feed is not taken in whole.

The feeds are generated here (20,000 entries, a few MB) and served by the replay server
on loopback. At most DIGEST_MAX_ENTRIES_PER_FETCH entries are stored, a feed past
DIGEST_MAX_FEED_BYTES is cut after its last complete entry, and the cut is reported in
`digest fetch --json`, the fetch report and `digest status`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from replay_server import ReplayServer, Reply
from sqlmodel import Session, func, select

from digest import pipeline, store
from digest.models import Paper
from tests.conftest import run_cli

ENTRIES = 20_000


def rss(count: int) -> bytes:
    items = "".join(
        f"<item><title>Paper number {n}</title><link>https://example.org/p/{n}</link>"
        f"<guid>https://example.org/p/{n}</guid><description>Abstract {n} &amp; more"
        f"</description><pubDate>Mon, 24 Nov 2025 10:00:00 GMT</pubDate></item>\n"
        for n in range(count)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Huge</title><link>https://example.org/</link>\n{items}</channel></rss>\n"
    ).encode()


def atom(count: int) -> bytes:
    entries = "".join(
        f"<a:entry><a:id>https://example.org/a/{n}</a:id><a:title>Atom paper {n}</a:title>"
        f'<a:link href="https://example.org/a/{n}"/><a:updated>2025-11-24T10:00:00Z</a:updated>'
        f"</a:entry>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0"?><a:feed xmlns:a="http://www.w3.org/2005/Atom">'
        f"<a:title>Huge atom</a:title><a:id>urn:x</a:id>{entries}</a:feed>"
    ).encode()


def _count_papers(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Paper)).one()


def test_fetch_keeps_at_most_the_cap_and_reports_the_cut(env: dict[str, str], tmp_path: Path):
    with ReplayServer() as replay:
        replay.route("/huge.xml", Reply(200, rss(ENTRIES), {"Content-Type": "application/rss+xml"}))
        cli_env = {
            **env,
            "DIGEST_SOURCES": f"feed:{replay.url}/huge.xml",
            "DIGEST_MAX_ENTRIES_PER_FETCH": "1000",
        }
        assert run_cli(["init"], cli_env, cwd=tmp_path).code == 0
        result = run_cli(["fetch", "--json"], cli_env, cwd=tmp_path, timeout=120)
    assert result.code == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["failed"] is False
    assert report["new"] == 1000
    assert f"kept the first 1000 of {ENTRIES} entries" in report["errors"][0]
    papers = json.loads(run_cli(["papers", "--json"], cli_env, cwd=tmp_path).stdout)
    assert len(papers) == 1000
    # The first entries of the feed (the newest in most feeds) are the ones kept.
    assert {p["title"] for p in papers} == {f"Paper number {n}" for n in range(1000)}
    status = run_cli(["status", "--json"], cli_env, cwd=tmp_path)
    [source] = json.loads(status.stdout)["sources"]
    assert source["last_error"].startswith(f"kept the first 1000 of {ENTRIES} entries")
    text = run_cli(["status"], {**cli_env, "COLUMNS": "250"}, cwd=tmp_path)
    assert "kept the first 1000 of" in text.stdout


def test_a_feed_past_the_byte_cap_is_cut_after_its_last_complete_entry(settings, engine):
    body = rss(ENTRIES)
    with ReplayServer() as replay:
        replay.route("/huge.xml", Reply(200, body, {"Content-Type": "application/rss+xml"}))
        capped = replace(
            settings, sources=f"feed:{replay.url}/huge.xml", max_feed_bytes=len(body) // 10
        )
        [report] = pipeline.fetch_all(engine, capped)
    assert not report.failed, report.errors
    assert 0 < report.new < ENTRIES // 5
    assert report.errors[0] == (
        f"read only the first {len(body) // 10} bytes (DIGEST_MAX_FEED_BYTES): "
        f"kept the first {report.new} entries"
    )
    assert _count_papers(engine) == report.new


def test_a_prefixed_atom_feed_is_capped_too(settings, engine):
    with ReplayServer() as replay:
        replay.route("/a.xml", Reply(200, atom(3000), {"Content-Type": "application/atom+xml"}))
        capped = replace(settings, sources=f"feed:{replay.url}/a.xml", max_entries_per_fetch=250)
        [report] = pipeline.fetch_all(engine, capped)
    assert not report.failed, report.errors
    assert report.new == 250
    assert report.errors == ["kept the first 250 of 3000 entries (DIGEST_MAX_ENTRIES_PER_FETCH)"]
    assert store.get_source_state(engine, f"feed:{replay.url}/a.xml").last_status == "ok"


def test_a_feed_under_the_caps_is_taken_whole_with_no_warning(settings, engine):
    with ReplayServer() as replay:
        replay.route("/s.xml", Reply(200, rss(40), {"Content-Type": "application/rss+xml"}))
        capped = replace(settings, sources=f"feed:{replay.url}/s.xml", max_entries_per_fetch=40)
        [report] = pipeline.fetch_all(engine, capped)
    assert (report.new, report.errors, report.failed) == (40, [], False)
