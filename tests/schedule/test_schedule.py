"""The pure due-time logic (`digest.schedule`): zones, frequencies, DST, catch-up."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import schedule


@dataclass
class Sched:
    timezone: str
    send_at: str = "07:30"
    frequency: str = "daily"
    weekday: str | None = None


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def slots_between(s: Sched, start: datetime, end: datetime, step: timedelta) -> list:
    """Walk the clock like the scheduler does and record every digest it would send."""
    sent = []
    last = start
    now = start
    while now <= end:
        slot = schedule.due_slot(s, now, last)
        if slot is not None:
            sent.append((slot, now))
            last = now
        now += step
    return sent


@pytest.mark.parametrize(
    ("zone", "day", "expected_utc"),
    [
        ("Asia/Tokyo", date(2026, 3, 9), utc(2026, 3, 8, 22, 30)),
        ("Europe/Berlin", date(2026, 3, 28), utc(2026, 3, 28, 6, 30)),  # CET, day before
        ("Europe/Berlin", date(2026, 3, 29), utc(2026, 3, 29, 5, 30)),  # CEST from today
        ("Europe/Berlin", date(2026, 10, 25), utc(2026, 10, 25, 6, 30)),  # back to CET
        ("America/New_York", date(2026, 3, 7), utc(2026, 3, 7, 12, 30)),
        ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 11, 30)),  # EDT
        ("America/New_York", date(2026, 11, 1), utc(2026, 11, 1, 12, 30)),  # EST again
        ("Pacific/Honolulu", date(2026, 3, 8), utc(2026, 3, 8, 17, 30)),  # no DST at all
    ],
)
def test_0730_local_on_both_sides_of_dst(zone: str, day: date, expected_utc: datetime) -> None:
    slot = schedule.slot_on(Sched(zone), day)
    assert slot is not None
    assert slot.at == expected_utc
    assert slot.at.astimezone(ZoneInfo(zone)).strftime("%H:%M") == "07:30"
    assert slot.edition == day.isoformat()


def test_nonexistent_time_is_sent_when_the_clock_jumps() -> None:
    # 2026-03-08 02:30 does not exist in New York: clocks go 01:59:59 EST -> 03:00 EDT.
    slot = schedule.slot_on(Sched("America/New_York", "02:30"), date(2026, 3, 8))
    assert slot is not None
    assert slot.at == utc(2026, 3, 8, 7, 0)
    assert slot.at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "03:00"
    # Berlin: 02:15 on 2026-03-29 does not exist; the clock jumps at 01:00 UTC.
    berlin = schedule.slot_on(Sched("Europe/Berlin", "02:15"), date(2026, 3, 29))
    assert berlin is not None and berlin.at == utc(2026, 3, 29, 1, 0)


def test_ambiguous_time_is_sent_once_on_fall_back_day() -> None:
    # 01:30 happens twice in New York on 2026-11-01; one digest, at the first.
    s = Sched("America/New_York", "01:30")
    slot = schedule.slot_on(s, date(2026, 11, 1))
    assert slot is not None and slot.at == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    sent = slots_between(s, utc(2026, 10, 31, 12, 0), utc(2026, 11, 2, 3, 0), timedelta(minutes=15))
    assert [sl.edition for sl, _ in sent] == ["2026-11-01"]
    assert sent[0][1] == utc(2026, 11, 1, 5, 30)


def test_fall_back_day_has_25_hours_and_one_digest() -> None:
    s = Sched("Europe/Berlin", "07:30")
    sent = slots_between(s, utc(2026, 10, 24, 8, 0), utc(2026, 10, 26, 8, 0), timedelta(minutes=5))
    assert [(sl.edition, at) for sl, at in sent] == [
        ("2026-10-25", utc(2026, 10, 25, 6, 30)),
        ("2026-10-26", utc(2026, 10, 26, 6, 30)),
    ]


def test_weekly_once_a_week_on_its_weekday() -> None:
    s = Sched("Asia/Tokyo", "08:00", "weekly", "wed")
    sent = slots_between(s, utc(2026, 3, 1), utc(2026, 3, 29), timedelta(minutes=15))
    editions = [sl.edition for sl, _ in sent]
    assert editions == ["2026-03-04", "2026-03-11", "2026-03-18", "2026-03-25"]
    for _slot, at in sent:
        assert at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%a %H:%M") == "Wed 08:00"


def test_weekdays_skip_the_weekend() -> None:
    s = Sched("Europe/Berlin", "07:00", "weekdays")
    sent = slots_between(s, utc(2026, 6, 1), utc(2026, 6, 15), timedelta(minutes=30))
    days = [date.fromisoformat(sl.edition).strftime("%a") for sl, _ in sent]
    assert days == ["Mon", "Tue", "Wed", "Thu", "Fri"] * 2


def test_catch_up_after_downtime_is_one_slot() -> None:
    s = Sched("America/New_York")
    last = local("America/New_York", 2026, 5, 4, 7, 30)
    now = local("America/New_York", 2026, 5, 7, 12, 0)  # three days later
    slot = schedule.due_slot(s, now, last)
    assert slot is not None and slot.edition == "2026-05-07"
    # Once it is recorded, nothing more is due that day.
    assert schedule.due_slot(s, now + timedelta(minutes=5), now) is None


def test_never_served_subscriber_is_due_at_once_keyed_by_local_date() -> None:
    now = utc(2026, 5, 4, 20, 0)  # already 5 May in Tokyo
    slot = schedule.due_slot(Sched("Asia/Tokyo", "07:30"), now, None)
    assert slot is not None and slot.edition == "2026-05-05" and slot.at == now


def test_before_the_send_time_nothing_is_due() -> None:
    s = Sched("Pacific/Honolulu")
    yesterday = local("Pacific/Honolulu", 2026, 5, 4, 7, 30)
    assert schedule.due_slot(s, local("Pacific/Honolulu", 2026, 5, 5, 7, 29), yesterday) is None
    slot = schedule.due_slot(s, local("Pacific/Honolulu", 2026, 5, 5, 7, 30), yesterday)
    assert slot is not None and slot.edition == "2026-05-05"


def test_next_slot_is_strictly_after_now() -> None:
    s = Sched("Europe/Berlin", "07:30", "weekly", "mon")
    monday = local("Europe/Berlin", 2026, 3, 30, 7, 30)
    nxt = schedule.next_slot(s, monday)
    assert nxt.edition == "2026-04-06"


def test_naive_last_digest_is_taken_as_utc() -> None:
    s = Sched("UTC", "07:00")
    assert schedule.due_slot(s, utc(2026, 1, 2, 8), datetime(2026, 1, 2, 7, 30)) is None


ZONES = [
    "Asia/Tokyo",
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Honolulu",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kathmandu",
    "Europe/London",
]


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45]),
    quarter=st.integers(0, 3 * 365 * 96),
)
def test_every_local_day_gets_exactly_one_digest(zone, hour, minute, quarter) -> None:
    """Over any 10 days, in zones with odd offsets and DST rules, a daily subscriber
    gets one digest per local date, each at or just after their wall-clock time."""
    s = Sched(zone, f"{hour:02d}:{minute:02d}")
    begin = utc(2025, 1, 1) + timedelta(minutes=15 * quarter)
    sent = slots_between(s, begin, begin + timedelta(days=10), timedelta(minutes=15))
    editions = [sl.edition for sl, _ in sent]
    assert len(editions) == len(set(editions))
    assert len(editions) in (9, 10, 11)
    tz = ZoneInfo(zone)
    for sl, at in sent:
        assert at == sl.at  # sent at the very step the slot came due
        wall = sl.at.astimezone(tz)
        assert wall.date().isoformat() == sl.edition
        late = wall.replace(tzinfo=None) - wall.replace(hour=hour, minute=minute, tzinfo=None)
        # On time; only a wall time skipped by a spring-forward jump comes later,
        # at the jump itself (never early, never more than the jump).
        if late:
            assert timedelta(0) < late <= timedelta(hours=1)
            assert (
                sl.at.astimezone(tz).utcoffset()
                != (sl.at - timedelta(seconds=1)).astimezone(tz).utcoffset()
            )


def test_upcoming_slot_skips_an_edition_taken_before_a_move_west() -> None:
    tokyo = schedule.Schedule("Asia/Tokyo", "07:30")
    sent = utc(2026, 3, 9, 22, 30)  # 07:30 in Tokyo on 10 March
    honolulu = replace(tokyo, timezone="Pacific/Honolulu")
    after = sent + timedelta(hours=1)
    # Honolulu's 10 March morning comes later, but 10 March is the edition they had.
    slot = schedule.upcoming_slot(honolulu, after, sent, "2026-03-10")
    assert slot.edition == "2026-03-11"
    assert schedule.due_slot(honolulu, slot.at - timedelta(days=1), sent, "2026-03-10") is None
    assert schedule.due_slot(honolulu, slot.at, sent, "2026-03-10") == slot
