"""Issue 3 acceptance, end to end: real SQLite file, real SMTP server on loopback, the
real pipeline; the clock is moved with time-machine to make "the next day" real."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import time_machine

from digest import pipeline, store, subscriptions
from digest.config import Settings

DAY1 = [
    {"id": "t-1", "title": "Diffusion models for robot control", "abstract": "We study control."},
    {"id": "t-2", "title": "Speech recognition at scale", "abstract": "Audio models."},
    {"id": "t-3", "title": "Message passing in graph neural networks", "abstract": "Chemistry."},
    {"id": "t-4", "title": "A survey of reinforcement learning", "abstract": "Policies."},
    {"id": "t-5", "title": "<script>alert(1)</script> Speech tricks", "abstract": "Hostile."},
]
DAY2 = [
    {"id": "t-6", "title": "Diffusion policies for manipulation", "abstract": "Robots."},
    {"id": "t-7", "title": "Expressive speech synthesis", "abstract": "Voices."},
]
PROFILES = {
    "ada@example.org": "diffusion",
    "bob@example.org": 'speech, "graph neural networks"',
    "cy@example.org": '"reinforcement learning"',
    "dee@example.org": '"quantum chromodynamics"',
}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def titles_by_recipient(sink) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for msg in sink.messages():
        text = msg.get_body(preferencelist=("plain",)).get_content()
        out.setdefault(str(msg["To"]), []).append(text)
    return out


def test_three_subscribers_get_exactly_their_papers_once(
    tmp_path, settings: Settings, engine, smtp_sink
):
    feed = tmp_path / "papers.jsonl"
    write_jsonl(feed, DAY1)
    settings = replace(settings, sources=f"file:{feed}", send_at="00:00")
    for address, profile in PROFILES.items():
        subscriptions.subscribe(engine, settings, address, profile, send_at="00:00")

    with time_machine.travel(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), tick=True):
        report = pipeline.run_once(engine, settings)
    assert report.ok
    got = titles_by_recipient(smtp_sink)
    assert set(got) == {"ada@example.org", "bob@example.org", "cy@example.org"}
    assert all(len(v) == 1 for v in got.values())
    ada, bob, cy = got["ada@example.org"][0], got["bob@example.org"][0], got["cy@example.org"][0]
    assert "Diffusion models for robot control" in ada and "Speech" not in ada
    assert "Speech recognition at scale" in bob and "graph neural networks" in bob
    assert "Diffusion" not in bob and "reinforcement" not in bob
    assert "A survey of reinforcement learning" in cy and "Diffusion" not in cy

    # The hostile title reaches Bob escaped in HTML, never as markup.
    html = (
        next(m for m in smtp_sink.messages() if str(m["To"]) == "bob@example.org")
        .get_body(preferencelist=("html",))
        .get_content()
    )
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html

    # A second run the same day sends nothing.
    with time_machine.travel(datetime(2026, 3, 2, 13, 0, tzinfo=UTC), tick=True):
        again = pipeline.run_once(engine, settings)
    assert again.send.sent == 0
    assert len(smtp_sink.messages()) == 3

    # The next day, only the new papers.
    write_jsonl(feed, DAY1 + DAY2)
    with time_machine.travel(datetime(2026, 3, 3, 12, 0, tzinfo=UTC), tick=True):
        pipeline.run_once(engine, settings)
    got = titles_by_recipient(smtp_sink)
    assert len(got["ada@example.org"]) == 2 and len(got["bob@example.org"]) == 2
    ada2, bob2 = got["ada@example.org"][1], got["bob@example.org"][1]
    assert "Diffusion policies for manipulation" in ada2
    assert "Diffusion models for robot control" not in ada2
    assert "Expressive speech synthesis" in bob2 and "Speech recognition at scale" not in bob2
    assert len(got["cy@example.org"]) == 1
    assert "dee@example.org" not in got

    rows = store.digests_for_edition(engine, "2026-03-03")
    sent = {r.recipient: r.paper_ids for r in rows if r.status == "sent"}
    assert sent["ada@example.org"] == ["t-6"]


def test_cli_run_sends_once_and_dry_run_sends_nothing(tmp_path, cli, smtp_sink):
    feed = tmp_path / "papers.jsonl"
    write_jsonl(feed, DAY1)
    extra = {"DIGEST_SOURCES": f"file:{feed}", "DIGEST_SEND_AT": "00:00"}
    for address, profile in PROFILES.items():
        res = cli("subscribe", address, "--keywords", profile, extra_env=extra)
        assert res.code == 0, res.stderr
    dry = cli("run", "--dry-run", extra_env=extra)
    assert dry.code == 0, dry.stderr
    assert smtp_sink.messages() == []
    first = cli("run", extra_env=extra)
    assert first.code == 0, first.stderr
    assert len(smtp_sink.messages()) == 3
    # the log says when building was over (sending may go on): bench/edition.py reads it
    built = [line for line in first.stderr.splitlines() if " run.built " in line]
    assert len(built) == 1 and "built=3 " in built[0] and "failed=0 " in built[0], first.stderr
    second = cli("run", extra_env=extra)
    assert second.code == 0, second.stderr
    assert len(smtp_sink.messages()) == 3
    for msg in smtp_sink.messages():
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["Message-ID"]


def test_same_pipeline_on_postgresql(tmp_path, settings: Settings, postgres_url, smtp_sink):
    """PostgreSQL is the choice past one machine: the same run, the same guarantees."""
    feed = tmp_path / "papers.jsonl"
    write_jsonl(feed, DAY1)
    settings = replace(settings, sources=f"file:{feed}", database_url=postgres_url)
    engine = store.make_engine(postgres_url)
    store.init_db(engine)
    store.init_db(engine)  # idempotent
    for address, profile in PROFILES.items():
        subscriptions.subscribe(engine, settings, address, profile, send_at="00:00")
    with time_machine.travel(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), tick=True):
        assert pipeline.run_once(engine, settings).ok
        assert pipeline.run_once(engine, settings).send.sent == 0
    assert sorted(titles_by_recipient(smtp_sink)) == [
        "ada@example.org",
        "bob@example.org",
        "cy@example.org",
    ]
    engine.dispose()


def test_one_unsendable_subscriber_fails_alone_and_keeps_their_papers(
    tmp_path, settings: Settings, engine, smtp_sink
):
    from digest.models import Subscriber

    feed = tmp_path / "papers.jsonl"
    write_jsonl(feed, DAY1)
    settings = replace(settings, sources=f"file:{feed}")
    subscriptions.subscribe(engine, settings, "ada@example.org", "diffusion", send_at="00:00")
    # Stored by an older version or by hand: not an address a message can carry.
    store.add_subscriber(
        engine,
        Subscriber(email="broken address@example.org", keywords="diffusion", send_at="00:00"),
    )
    ids_multibyte = "ok@bücher.de"
    subscriptions.subscribe(engine, settings, ids_multibyte, "diffusion", send_at="00:00")
    with time_machine.travel(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), tick=True):
        report = pipeline.run_once(engine, settings)
    assert not report.ok and report.build.failed == 1
    assert sorted(titles_by_recipient(smtp_sink)) == ["ada@example.org", "ok@xn--bcher-kva.de"]
    rows = {r.recipient: r for r in store.digests_for_edition(engine, "2026-03-02")}
    assert rows["broken address@example.org"].status == "failed"
    assert "address" in rows["broken address@example.org"].last_error
    broken = store.get_subscriber(engine, "broken address@example.org")
    assert broken.last_paper_seq is None  # their papers wait for a digest that can be sent


def test_two_processes_storing_the_same_new_paper_both_succeed(engine, settings):
    """A cron `digest run` beside `digest serve`: the second insert of a new paper
    must merge, not fail the whole batch."""
    import threading

    from digest.sources.base import PaperRecord

    records = [PaperRecord(id=f"race-{i}", title=f"Race paper {i}", source="t") for i in range(300)]
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(store.merge_papers(engine, records))
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(r.new for r in results) == 300
    assert len(store.list_papers(engine)) == 300
