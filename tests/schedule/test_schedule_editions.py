"""One edition per subscriber's local day: what `status` promises is what is sent, an
overdue digest is due now, and the documented edge cases (zone, send-time and weekday
changes, pause and resume with the max-papers cap, weekdays-only) stay as the README
says.

Real parts throughout: a real SQLite file, the real SMTP sink on loopback, the real
run path (`pipeline.run_once`), the clock moved by time-machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from digest import pipeline, store, subscriptions
from digest.config import Settings
from digest.scheduler import status_info
from digest.sources.base import PaperRecord


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def paper(pid: str) -> PaperRecord:
    return PaperRecord(id=pid, title=f"Diffusion {pid}", abstract="diffusion", source="file")


class Clock:
    """The real run path (`pipeline.run_once`, what cron's `digest run` does) under a
    frozen clock that the test moves."""

    def __init__(self, engine, settings: Settings, sink, traveller) -> None:
        self.engine, self.settings, self.sink, self.traveller = engine, settings, sink, traveller

    def run_at(self, when: datetime) -> pipeline.RunReport:
        self.traveller.move_to(when)
        report = pipeline.run_once(self.engine, self.settings, fetch=False, now=when)
        assert report.ok, (report.build, report.send)
        return report

    def editions(self, email: str) -> list[str]:
        sub = store.get_subscriber(self.engine, email)
        return [
            d.edition
            for d in store.digests_for_edition(self.engine)
            if d.subscriber_id == sub.id and d.status != "empty"
        ]


@pytest.fixture
def clock(settings: Settings, engine, smtp_sink) -> Iterator[Clock]:
    with time_machine.travel(utc(2026, 11, 2), tick=False) as traveller:
        yield Clock(engine, settings, smtp_sink, traveller)


# ---------------------------------------------------------------- bug: status promised
# a digest that would never be sent (it ignored the edition already sent)


def test_status_next_digest_is_the_one_that_will_really_be_sent(clock: Clock) -> None:
    s, e = clock.settings, clock.engine
    subscriptions.subscribe(e, s, "ada@example.org", "diffusion", timezone="Asia/Tokyo",
                            send_at="08:00")  # fmt: skip
    # 06:04 in Tokyo on 26 Nov: a new subscriber's first digest goes at once, as 26 Nov.
    first = utc(2026, 11, 25, 21, 4)
    clock.traveller.move_to(first - timedelta(minutes=1))
    store.merge_papers(e, [paper("p-0")])
    assert clock.run_at(first).build.built == 1
    info = status_info(e, s, now=first)
    nxt = info["next_digests"][0]
    # 08:00 Tokyo on the 26th (23:00 UTC on the 25th) has its edition already.
    assert (nxt["edition"], nxt["at"]) == ("2026-11-27", "2026-11-26T23:00:00+00:00")
    # ... and that is indeed what happens.
    assert clock.run_at(utc(2026, 11, 25, 23, 5)).build.built == 0
    store.merge_papers(e, [paper("p-2")])
    assert clock.run_at(utc(2026, 11, 26, 23, 5)).build.built == 1


def test_status_shows_an_overdue_digest_as_due_now(clock: Clock) -> None:
    s, e = clock.settings, clock.engine
    subscriptions.subscribe(e, s, "ada@example.org", "diffusion", timezone="Europe/Berlin",
                            send_at="07:30")  # fmt: skip
    clock.run_at(utc(2026, 11, 2, 7))  # first digest (nothing matched: an empty edition)
    down_until = utc(2026, 11, 5, 12)  # nothing ran for three days
    nxt = status_info(e, s, now=down_until)["next_digests"][0]
    assert (nxt["edition"], nxt["at"]) == ("2026-11-05", down_until.isoformat())


# ---------------------------------------------------------------- edge cases, as
# documented in the README's scheduling section


def test_changing_zone_send_time_or_weekday_never_doubles_an_edition(clock: Clock) -> None:
    """Hour by hour over ten days while the subscriber moves around: each edition (a
    local date) at most once, one after the other, and every paper once. Moving west
    means a local day with no digest (its edition came before the move), moving east
    two within hours (each for its own local day): both documented in the README."""
    s, e = clock.settings, clock.engine
    email = "ada@example.org"
    subscriptions.subscribe(e, s, email, "diffusion", timezone="Pacific/Honolulu",
                            send_at="07:30")  # fmt: skip
    changes = {
        utc(2026, 11, 3, 18): {"timezone": "Asia/Tokyo"},
        utc(2026, 11, 5, 0): {"timezone": "Pacific/Honolulu"},
        utc(2026, 11, 6, 20): {"send_at": "06:00"},
        utc(2026, 11, 7, 19): {"send_at": "21:00"},
        utc(2026, 11, 8, 12): {"frequency": "weekly", "weekday": "wed"},
    }
    at = utc(2026, 11, 2, 0)
    n = 0
    while at < utc(2026, 11, 12, 12):
        if at in changes:
            subscriptions.change(e, s, email, **changes[at])
        store.merge_papers(e, [paper(f"p-{n}")])
        n += 1
        clock.run_at(at)
        at += timedelta(hours=1)
    eds = clock.editions(email)
    assert len(eds) == len(set(eds)), eds
    assert eds == [
        "2026-11-01",  # first digest at once (Honolulu's 1 Nov evening)
        "2026-11-02",
        "2026-11-03",  # 17:30 UTC; then east to Tokyo, where it is 4 Nov already:
        "2026-11-04",  # 22:30 UTC, the next edition (a new local day), not a repeat
        "2026-11-05",  # Tokyo's; then west to Honolulu, still on 4 Nov there:
        # Honolulu's 5 Nov is the edition they had, so it is not sent again
        "2026-11-06",
        "2026-11-07",  # at 06:00 now; moving to 21:00 later that day sends no second one
        # 8 Nov at 21:00 would be next, but by then they chose weekly on Wednesdays
        "2026-11-11",
    ], eds
    # every paper reached them exactly once, so nothing was lost to the moves
    sent = [p for d in store.digests_for_edition(e) for p in (d.paper_ids or [])]
    assert len(sent) == len(set(sent))


def test_paused_subscriber_gets_one_capped_digest_on_resume(clock: Clock) -> None:
    """Paused: nothing. Resumed: at the next run, one digest with the best papers since
    their last one, capped by max papers; the rest are not carried over."""
    s, e = clock.settings, clock.engine
    email = "ada@example.org"
    subscriptions.subscribe(e, s, email, "diffusion", timezone="UTC", send_at="07:00",
                            max_papers=3)  # fmt: skip
    clock.traveller.move_to(utc(2026, 11, 2, 7))
    store.merge_papers(e, [paper("before")])
    clock.run_at(utc(2026, 11, 2, 7, 5))
    store.update_subscriber(e, email, status="paused")
    for day in range(3, 8):
        store.merge_papers(e, [paper(f"d{day}-{i}") for i in range(2)])
        assert clock.run_at(utc(2026, 11, day, 7, 5)).build.built == 0
    store.update_subscriber(e, email, status="active")
    resumed = clock.run_at(utc(2026, 11, 7, 15))  # not waiting for tomorrow morning
    assert resumed.build.built == 1
    last = store.digest_for(e, store.get_subscriber(e, email).id, "2026-11-07")
    assert len(last.paper_ids) == 3 and "before" not in last.paper_ids
    store.merge_papers(e, [paper("fresh")])
    nxt = clock.run_at(utc(2026, 11, 8, 7, 5))
    assert nxt.build.built == 1
    # only what is new since the resumed digest; the 7 papers over the cap are dropped
    assert store.digest_for(e, store.get_subscriber(e, email).id, "2026-11-08").paper_ids == [
        "fresh"
    ]


def test_weekdays_subscriber_on_a_saturday(clock: Clock) -> None:
    s, e = clock.settings, clock.engine
    subscriptions.subscribe(e, s, "ada@example.org", "diffusion", timezone="Europe/Berlin",
                            send_at="07:30", frequency="weekdays")  # fmt: skip
    clock.traveller.move_to(utc(2026, 11, 6, 6))
    store.merge_papers(e, [paper("fri")])
    clock.run_at(utc(2026, 11, 6, 7))  # Friday 08:00 Berlin: the first digest, at once
    for hour in range(0, 48, 2):  # Saturday and Sunday
        store.merge_papers(e, [paper(f"we-{hour}")])
        assert clock.run_at(utc(2026, 11, 7, 0) + timedelta(hours=hour)).build.built == 0
    assert clock.run_at(utc(2026, 11, 9, 6, 35)).build.built == 1  # Monday 07:35
    assert clock.editions("ada@example.org") == ["2026-11-06", "2026-11-09"]
