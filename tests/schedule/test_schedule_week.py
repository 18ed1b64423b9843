"""Each subscriber's own morning, end to end: the real run path (`pipeline.run_once`),
a real SQLite file, the real SMTP sink on loopback, and the clock moved by
time-machine in 15-minute steps the way cron would call `digest run`.

The simulated ten days (Sat 24 Oct - Mon 2 Nov 2026) hold both autumn DST changes:
Europe goes back on Sunday 25 October, the US on Sunday 1 November.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from digest import pipeline, store, subscriptions
from digest.config import Settings
from digest.sources.base import PaperRecord

STEP = timedelta(minutes=15)
DAILY = {
    "tokyo@example.org": "Asia/Tokyo",
    "berlin@example.org": "Europe/Berlin",
    "newyork@example.org": "America/New_York",
    "honolulu@example.org": "Pacific/Honolulu",
}
WEEKLY = "weekly@example.org"  # Berlin, Mondays 07:30
WEEKDAYS = "weekdays@example.org"  # New York, Monday to Friday 07:30
QUIET = "quiet@example.org"  # nothing ever matches, asked to be told
SILENT = "silent@example.org"  # nothing ever matches, not asked


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def paper(pid: str, source: str = "huggingface", **kw: object) -> PaperRecord:
    return PaperRecord(
        id=pid, title=f"Diffusion study {pid}", abstract="We study diffusion.", source=source, **kw
    )


@dataclass
class Clock:
    """Drives the real run path under a frozen, steppable clock."""

    engine: object
    settings: Settings
    sink: object
    traveller: object
    now: datetime
    arrivals: dict[str, list[datetime]] = field(default_factory=dict)
    seen: int = 0

    def run(self, everyone: bool = False) -> pipeline.RunReport:
        report = pipeline.run_once(self.engine, self.settings, fetch=False, everyone=everyone)
        assert report.ok, report.send
        if report.send.sent:
            msgs = self.sink.messages()
            for msg in msgs[self.seen :]:
                self.arrivals.setdefault(str(msg["To"]), []).append(self.now)
            self.seen = len(msgs)
        return report

    def move(self, to: datetime) -> None:
        self.now = to
        self.traveller.move_to(to)

    def step_until(self, end: datetime, papers_at: dict[datetime, list[PaperRecord]]) -> None:
        while self.now < end:
            self.move(self.now + STEP)
            for rec_list in (papers_at.get(self.now),):
                if rec_list:
                    store.merge_papers(self.engine, rec_list)
            self.run()


@pytest.fixture
def clock(settings: Settings, engine, smtp_sink) -> Iterator[Clock]:
    start = utc(2026, 10, 24, 0, 0)
    with time_machine.travel(start, tick=False) as traveller:
        yield Clock(engine, replace(settings, max_papers=200), smtp_sink, traveller, start)


def subscribe_all(clock: Clock) -> None:
    s, e = clock.settings, clock.engine
    for address, zone in DAILY.items():
        subscriptions.subscribe(e, s, address, "diffusion", timezone=zone, send_at="07:30")
    subscriptions.subscribe(
        e,
        s,
        WEEKLY,
        "diffusion",
        timezone="Europe/Berlin",
        send_at="07:30",
        frequency="weekly",
        weekday="mon",
    )
    subscriptions.subscribe(
        e,
        s,
        WEEKDAYS,
        "diffusion",
        timezone="America/New_York",
        send_at="07:30",
        frequency="weekdays",
    )
    subscriptions.subscribe(
        e,
        s,
        QUIET,
        '"quantum chromodynamics"',
        timezone="Europe/Berlin",
        send_at="07:30",
        notify_empty=True,
    )
    subscriptions.subscribe(
        e, s, SILENT, '"quantum chromodynamics"', timezone="Europe/Berlin", send_at="07:30"
    )


def daily_papers(start: datetime, days: int) -> dict[datetime, list[PaperRecord]]:
    """Two batches a day: Hugging Face at 12:00 UTC, arXiv at 00:30 UTC (20:30 New York)."""
    out: dict[datetime, list[PaperRecord]] = {}
    for d in range(days):
        day = start + timedelta(days=d)
        out[day.replace(hour=12)] = [paper(f"hf-{d}-{i}") for i in range(2)]
        out[day.replace(hour=0, minute=30) + timedelta(days=1)] = [
            paper(f"ax-{d}-{i}", "arxiv") for i in range(3)
        ]
    return out


def local_times(arrivals: list[datetime], zone: str) -> list[str]:
    tz = ZoneInfo(zone)
    return [a.astimezone(tz).strftime("%Y-%m-%d %a %H:%M %Z") for a in arrivals]


def test_a_week_of_mornings_across_both_dst_changes(clock: Clock) -> None:
    store.merge_papers(clock.engine, [paper("seed-1"), paper("seed-2")])
    subscribe_all(clock)
    end = utc(2026, 11, 2, 22, 30)
    clock.run()  # the first run: every new subscriber gets a first digest at once
    welcome = {k: len(v) for k, v in clock.arrivals.items()}
    assert welcome == {a: 1 for a in [*DAILY, WEEKLY, WEEKDAYS, QUIET]}
    clock.step_until(end, daily_papers(utc(2026, 10, 24), 10))

    for address, zone in DAILY.items():
        got = local_times(clock.arrivals[address][1:], zone)
        # Every later digest at 07:30 local, one per local date, none missed.
        assert all(t.endswith(" 07:30 " + t.split()[-1]) for t in got), got
        dates = [t.split()[0] for t in got]
        assert len(dates) == len(set(dates)), got
        first = datetime.fromisoformat(dates[0]).date()
        assert [datetime.fromisoformat(d).date() for d in dates] == [
            first + timedelta(days=i) for i in range(len(dates))
        ]
    # The change days themselves: 07:30 CEST the day before, 07:30 CET on the day.
    berlin = local_times(clock.arrivals["berlin@example.org"], "Europe/Berlin")
    assert "2026-10-24 Sat 07:30 CEST" not in berlin  # the welcome digest covered Sat
    assert "2026-10-25 Sun 07:30 CET" in berlin and "2026-10-26 Mon 07:30 CET" in berlin
    ny = local_times(clock.arrivals["newyork@example.org"], "America/New_York")
    assert "2026-10-31 Sat 07:30 EDT" in ny and "2026-11-01 Sun 07:30 EST" in ny
    # The day the clock goes back has 25 hours, and still exactly one digest.
    i = ny.index("2026-10-31 Sat 07:30 EDT")
    ny_at = clock.arrivals["newyork@example.org"]
    assert ny_at[i + 1] - ny_at[i] == timedelta(hours=25)
    tokyo = local_times(clock.arrivals["tokyo@example.org"], "Asia/Tokyo")
    assert tokyo[-1] == "2026-11-03 Tue 07:30 JST"
    honolulu = local_times(clock.arrivals["honolulu@example.org"], "Pacific/Honolulu")
    assert honolulu[1:3] == ["2026-10-24 Sat 07:30 HST", "2026-10-25 Sun 07:30 HST"]

    weekly = local_times(clock.arrivals[WEEKLY][1:], "Europe/Berlin")
    assert weekly == ["2026-10-26 Mon 07:30 CET", "2026-11-02 Mon 07:30 CET"]
    weekdays = local_times(clock.arrivals[WEEKDAYS][1:], "America/New_York")
    assert [t.split()[1] for t in weekdays] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]

    # "Tell me when there is nothing": a short note every morning; silence otherwise.
    assert len(clock.arrivals[QUIET]) == 10  # welcome + 25 Oct..2 Nov
    assert SILENT not in clock.arrivals
    note = [m for m in clock.sink.messages() if str(m["To"]) == QUIET][-1]
    assert str(note["Subject"]).startswith("Nothing new")

    # Never a paper twice to the same person, none skipped up to their last digest.
    everything = {p.id for p in store.list_papers(clock.engine)}
    by_sub: dict[int, list[str]] = {}
    for row in store.digests_for_edition(clock.engine):
        by_sub.setdefault(row.subscriber_id, []).extend(row.paper_ids)
    for sub in store.list_subscribers(clock.engine):
        ids = by_sub.get(sub.id, [])
        assert len(ids) == len(set(ids)), sub.email
        if sub.email in DAILY or sub.email in (WEEKLY, WEEKDAYS):
            upto = {p.id for p in store.papers_after(clock.engine, 0, sub.last_paper_seq)}
            assert set(ids) == upto, sub.email
            assert upto <= everything
    # And the messages carry what the outbox says: the weekly digest has the week.
    weekly_msgs = [m for m in clock.sink.messages() if str(m["To"]) == WEEKLY]
    text = weekly_msgs[-1].get_body(preferencelist=("plain",)).get_content()
    for d in range(2, 9):
        assert f"Diffusion study hf-{d}-0" in text


def test_restart_after_three_days_down_sends_one_catch_up(clock: Clock) -> None:
    store.merge_papers(clock.engine, [paper("seed-1")])
    subscribe_all(clock)
    clock.run()
    clock.step_until(utc(2026, 10, 25, 0, 0), daily_papers(utc(2026, 10, 24), 1))
    before = {k: len(v) for k, v in clock.arrivals.items()}
    # Down for three days: sources keep publishing, nobody runs `digest run`.
    missed = []
    for d in range(3):
        batch = [paper(f"down-{d}-{i}") for i in range(4)]
        missed.extend(p.id for p in batch)
        clock.move(utc(2026, 10, 25 + d, 12, 0))
        store.merge_papers(clock.engine, batch)
    clock.move(utc(2026, 10, 28, 2, 0))  # back up: Wednesday 02:00 UTC
    report = clock.run()
    caught = {k: len(v) - before.get(k, 0) for k, v in clock.arrivals.items()}
    # Everyone whose morning passed while we were down gets exactly one digest now:
    # Tokyo (11:00 local), Berlin, New York, Honolulu, the weekly (Monday missed),
    # weekdays (Tuesday missed) and the quiet one's note.
    assert caught == {a: 1 for a in [*DAILY, WEEKLY, WEEKDAYS, QUIET]}
    assert report.send.sent == 7
    for address in [*DAILY, WEEKLY, WEEKDAYS]:
        row = [r for r in store.digests_for_edition(clock.engine) if r.recipient == address][-1]
        assert set(missed) <= set(row.paper_ids), address
    # Then back to the ordinary rhythm: nothing more until each one's next morning.
    clock.step_until(utc(2026, 10, 28, 5, 0), {})
    assert {k: len(v) - before.get(k, 0) for k, v in clock.arrivals.items()} == caught


def test_run_now_makes_everyone_due_but_once_a_day(clock: Clock) -> None:
    store.merge_papers(clock.engine, [paper("seed-1")])
    subscribe_all(clock)
    clock.run()
    clock.move(utc(2026, 10, 24, 1, 0))
    store.merge_papers(clock.engine, [paper("late-1")])
    assert clock.run().send.sent == 0  # nobody's morning yet
    # `--now` makes everyone due with today's local edition; each one here already
    # had today's (their first digest), so nobody gets a second one today.
    report = clock.run(everyone=True)
    assert report.build.already == 8 and report.send.sent == 0
    # The next day, before anyone's morning: `--now` sends today's edition to all.
    clock.move(utc(2026, 10, 25, 1, 0))
    store.merge_papers(clock.engine, [paper("late-2")])
    report = clock.run(everyone=True)
    assert (report.build.built, report.build.nothing_new, report.build.empty) == (6, 1, 1)
    assert report.send.sent == 7
    assert clock.run(everyone=True).send.sent == 0
    # That was today's digest: their 07:30 passes without another one.
    clock.step_until(utc(2026, 10, 25, 7, 0), {})
    assert clock.seen == 7 + 8 - 1
    tokyo = [r for r in store.digests_for_edition(clock.engine) if r.recipient.startswith("tokyo")]
    assert [sorted(r.paper_ids) for r in tokyo] == [["seed-1"], ["late-1", "late-2"]]


def test_a_broken_schedule_row_does_not_stop_the_others(clock: Clock) -> None:
    """A row written around the validation (by hand, by an old version) is served on
    UTC 07:00 daily rather than failing everyone's run."""
    from digest.models import Subscriber

    store.merge_papers(clock.engine, [paper("seed-1")])
    subscriptions.subscribe(clock.engine, clock.settings, "ok@example.org", "diffusion")
    store.add_subscriber(
        clock.engine,
        Subscriber(
            email="odd@example.org", keywords="diffusion", timezone="Mars/Base", send_at="25:99"
        ),
    )
    assert clock.run().send.sent == 2
    clock.move(utc(2026, 10, 25, 6, 45))
    store.merge_papers(clock.engine, [paper("next-1")])
    assert clock.run().send.sent == 0
    clock.move(utc(2026, 10, 25, 7, 0))
    assert clock.run(everyone=False).send.sent == 2
