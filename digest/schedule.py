"""When a subscriber's digest is due: pure functions of a schedule and a moment.

A subscriber names a wall-clock time in their own IANA zone ("07:30 in Asia/Tokyo")
and a frequency. Each local day on which they get a digest has one *slot*: the UTC
instant at which that wall time first happens that day. Working in local dates and
converting each slot separately is what keeps 07:30 at 07:30 on both sides of a
daylight-saving change:

- a time that happens twice (the clock goes back) is taken at its first occurrence,
  and the edition key is the local date, so that day still gets one digest;
- a time that does not exist (the clock jumps forward over it) is sent at the first
  valid instant after it, the moment the clock jumps.

Nothing here reads the clock or the database, so the logic is tested exhaustively and
cheaply; `digest.pipeline` supplies `now` and the time of the last digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.states import FREQUENCIES, WEEKDAYS, Frequency, Weekday

# Weekly needs at most 7 days back; one more covers a slot pushed across midnight.
_LOOKBACK_DAYS = 8


class HasSchedule(Protocol):
    """Anything carrying a schedule: a `Subscriber` row or `subscriptions.ScheduleRequest`."""

    # Read-only properties, so that frozen dataclasses (`Schedule`) fit as well as rows.
    @property
    def timezone(self) -> str: ...
    @property
    def send_at(self) -> str: ...
    @property
    def frequency(self) -> str: ...
    @property
    def weekday(self) -> str | None: ...


@dataclass(frozen=True)
class Slot:
    """One scheduled digest: its edition key (the subscriber-local date) and instant."""

    edition: str
    at: datetime  # aware, UTC


@dataclass(frozen=True)
class Schedule:
    """A checked schedule (see `checked`)."""

    timezone: str = "UTC"
    send_at: str = "07:00"
    frequency: str = Frequency.DAILY
    weekday: str | None = None


def checked(schedule: HasSchedule) -> tuple[Schedule, bool]:
    """The schedule as stored, or UTC 07:00 daily if any part of it cannot be used
    (a row written by hand or by an old version); the flag says whether it was kept.
    One bad row must not stop everyone else's digests, nor lose its own."""
    try:
        ZoneInfo(schedule.timezone)
        _hhmm(schedule.send_at)
        if schedule.frequency not in FREQUENCIES:
            raise ValueError(schedule.frequency)
        if (
            schedule.frequency == Frequency.WEEKLY
            and (schedule.weekday or Weekday.MON) not in WEEKDAYS
        ):
            raise ValueError(schedule.weekday)
    except (ValueError, TypeError, AttributeError, OSError, ZoneInfoNotFoundError):
        return Schedule(), False
    sched = Schedule(schedule.timezone, schedule.send_at, schedule.frequency, schedule.weekday)
    return sched, True


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive value is taken as UTC (how SQLite may hand datetimes back)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def runs_on(day: date, frequency: str, weekday: str | None) -> bool:
    """Whether a schedule has a digest on this local calendar date."""
    if frequency == Frequency.WEEKDAYS:
        return day.weekday() < 5
    if frequency == Frequency.WEEKLY:
        return WEEKDAYS[day.weekday()] == (weekday or Weekday.MON)
    return True


def _hhmm(send_at: str) -> time:
    hour, minute = send_at.split(":")
    return time(int(hour), int(minute))


def _exists(local: datetime, zone: ZoneInfo) -> bool:
    naive = local.replace(tzinfo=None)
    return local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall time `at` on `day` in `zone`.

    An ambiguous time gives its first occurrence (fold=0). A nonexistent one gives the
    instant the clock jumps forward, found by bisection between the two readings of
    the wall time (before and after the jump), to the second.
    """
    first = datetime.combine(day, at, tzinfo=zone)
    if _exists(first, zone):
        return first.astimezone(UTC)
    # In a gap, fold=0 reads the wall time with the offset from before the jump (a
    # later instant), fold=1 with the offset after it (an earlier one).
    lo = first.replace(fold=1).astimezone(UTC)
    hi = first.replace(fold=0).astimezone(UTC)
    lo, hi = min(lo, hi), max(lo, hi)
    before = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)


def slot_on(schedule: HasSchedule, day: date) -> Slot | None:
    """The slot on local date `day`, or None if the schedule skips that day."""
    if not runs_on(day, schedule.frequency, schedule.weekday):
        return None
    zone = ZoneInfo(schedule.timezone)
    return Slot(day.isoformat(), local_instant(day, _hhmm(schedule.send_at), zone))


def latest_slot(schedule: HasSchedule, now: datetime) -> Slot | None:
    """The most recent slot at or before `now`."""
    now = as_utc(now)
    today = now.astimezone(ZoneInfo(schedule.timezone)).date()
    for back in range(_LOOKBACK_DAYS + 1):
        slot = slot_on(schedule, today - timedelta(days=back))
        if slot is not None and slot.at <= now:
            return slot
    return None


def next_slot(schedule: HasSchedule, now: datetime) -> Slot:
    """The first slot strictly after `now` (for `digest status` and the web page)."""
    now = as_utc(now)
    today = now.astimezone(ZoneInfo(schedule.timezone)).date()
    for ahead in range(_LOOKBACK_DAYS + 1):
        slot = slot_on(schedule, today + timedelta(days=ahead))
        if slot is not None and slot.at > now:
            return slot
    raise ValueError(f"no slot within {_LOOKBACK_DAYS} days for {schedule!r}")


def edition_at(schedule: HasSchedule, now: datetime) -> str:
    """The edition key of a digest built at `now` outside the schedule (`--now`)."""
    return as_utc(now).astimezone(ZoneInfo(schedule.timezone)).date().isoformat()


def due_slot(
    schedule: HasSchedule,
    now: datetime,
    last_digest_at: datetime | None,
    last_edition: str | None = None,
) -> Slot | None:
    """The slot to send now, or None when nothing is due.

    `last_digest_at` is when this subscriber's previous edition was built (sent or
    found empty), `last_edition` its key. A subscriber who never had one is due at
    once: their first digest should not wait for tomorrow. Otherwise the latest slot
    is due if it came after the previous edition and is for a later local date (a
    first digest or a `--now` one counts for its day); however many slots were missed
    (downtime), this yields one.
    """
    now = as_utc(now)
    if last_digest_at is None:
        return Slot(edition_at(schedule, now), now)
    latest = latest_slot(schedule, now)
    if latest is None or latest.at <= as_utc(last_digest_at):
        return None
    if last_edition is not None and latest.edition <= last_edition:
        return None
    return latest


def upcoming_slot(
    schedule: HasSchedule,
    now: datetime,
    last_digest_at: datetime | None,
    last_edition: str | None = None,
) -> Slot:
    """The digest this subscriber will actually get next (for `digest status`).

    Unlike `next_slot` it knows what was sent: a slot whose edition they already had
    (a first or `--now` digest earlier that local day, or a zone moved west) is not
    shown, and a digest due but not yet built is shown as due at `now`.
    """
    now = as_utc(now)
    due = due_slot(schedule, now, last_digest_at, last_edition)
    if due is not None:
        return Slot(due.edition, now)
    today = now.astimezone(ZoneInfo(schedule.timezone)).date()
    # One extra day: an edition key up to a day ahead of today may already be taken.
    for ahead in range(_LOOKBACK_DAYS + 2):
        slot = slot_on(schedule, today + timedelta(days=ahead))
        if slot is None or slot.at <= now:
            continue
        if last_edition is not None and slot.edition <= last_edition:
            continue
        return slot
    raise ValueError(f"no slot within {_LOOKBACK_DAYS + 2} days for {schedule!r}")
