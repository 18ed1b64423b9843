"""Papers first seen, across days: no paper reaches the same subscriber twice, even when
a source announces it again (an arXiv `replace`, Hugging Face featuring it again), and
none is skipped. Real run path, real SQLite file, real SMTP sink."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine

from digest import pipeline, store, subscriptions
from digest.sources.base import PaperRecord


def rec(pid: str, source: str, title: str = "", **kw: object) -> PaperRecord:
    return PaperRecord(
        id=pid,
        title=title or f"Diffusion paper {pid}",
        abstract="We study diffusion models.",
        source=source,
        **kw,
    )


def day(d: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, d, hour, 0, tzinfo=UTC)


def test_reannounced_papers_never_reach_a_subscriber_twice(settings, engine, smtp_sink) -> None:
    days = [
        # day 2: two papers, one from each source
        [rec("2603.00001", "arxiv"), rec("2603.00002", "huggingface", upvotes=3)],
        # day 3: Hugging Face features 00002 again (more upvotes), arXiv replaces 00001
        # (a new version), an arXiv replace of a paper we never stored, one new paper
        [
            rec("2603.00002", "huggingface", upvotes=40),
            rec("2603.00001", "arxiv", title="Diffusion paper 2603.00001 (v2)", update_only=True),
            rec("2603.09999", "arxiv", update_only=True),
            rec("2603.00003", "huggingface"),
        ],
        # day 4: both re-announced once more, by the other source this time, plus a new one
        [
            rec("2603.00001", "huggingface", upvotes=12),
            rec("2603.00002", "arxiv", update_only=True),
            rec("2603.00004", "arxiv"),
        ],
        # day 5: only re-announcements: nothing new, so no digest at all
        [rec("2603.00004", "huggingface", upvotes=2), rec("2603.00003", "huggingface")],
    ]
    with time_machine.travel(day(1), tick=False) as clock:
        subscriptions.subscribe(
            engine,
            settings,
            "ada@example.org",
            "diffusion",
            timezone="Europe/Berlin",
            send_at="07:30",
        )
        subscriptions.subscribe(
            engine,
            settings,
            "bo@example.org",
            "diffusion",
            timezone="America/New_York",
            send_at="07:30",
            frequency="weekly",
            weekday="fri",
        )
        pipeline.run_once(engine, settings, fetch=False)  # first run: nothing stored yet
        for d, batch in enumerate(days, start=2):
            clock.move_to(day(d, 1))
            counts = store.merge_papers(engine, batch)
            if d == 3:
                assert (counts.new, counts.updated, counts.skipped) == (1, 2, 1)
            clock.move_to(day(d, 12))  # after 07:30 in Berlin and New York
            report = pipeline.run_once(engine, settings, fetch=False)
            assert report.ok
        clock.move_to(day(6, 13))  # Friday in New York: Bo's weekly digest
        pipeline.run_once(engine, settings, fetch=False)

    rows = [r for r in store.digests_for_edition(engine) if r.status == "sent"]
    ada = [sorted(r.paper_ids) for r in rows if r.recipient == "ada@example.org"]
    assert ada == [["2603.00001", "2603.00002"], ["2603.00003"], ["2603.00004"]]
    bo = [r.paper_ids for r in rows if r.recipient == "bo@example.org"]
    assert [sorted(ids) for ids in bo] == [["2603.00001", "2603.00002", "2603.00003", "2603.00004"]]
    assert store.papers_by_ids(engine, ["2603.09999"]) == {}
    # The updates were kept (the v2 title, the highest upvotes) without a new seq.
    p1 = store.papers_by_ids(engine, ["2603.00001"])["2603.00001"]
    assert p1.title.endswith("(v2)") and p1.upvotes == 12

    # What the people actually received agrees: each title once per person.
    for address in ("ada@example.org", "bo@example.org"):
        texts = [
            m.get_body(preferencelist=("plain",)).get_content()
            for m in smtp_sink.messages()
            if str(m["To"]) == address
        ]
        for pid in ("2603.00001", "2603.00002", "2603.00003", "2603.00004"):
            assert sum(f"paper {pid}" in t for t in texts) == 1, (address, pid)
