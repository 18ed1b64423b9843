"""Editions, streamed: which subscribers are due, claimed and built a chunk at a time.

Subscribers are read in keyset pages of DIGEST_EDITION_CHUNK small rows; the due ones
of a page are claimed (their outbox rows inserted in `building`, see
`digest.store.claims`), and the claims are built by `digest.pipeline.pool`. So memory
holds a few chunks, never the edition; every digest is committed (with its
subscriber's watermark) before the sender can see it; and any number of processes,
on one machine or several, share an edition without building a digest twice.
Claims a dead or stalled process left behind are taken over when their lease ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta
from typing import Protocol

from digest import schedule, store
from digest.config import Settings
from digest.logs import log_event
from digest.models import Subscriber, utcnow
from digest.pipeline.build import BuildReport, EditionPlan
from digest.pipeline.pool import ChunkRunner, build_workers
from digest.pipeline.progress import Tracker, no_tracking
from digest.store import DatabaseError, Engine
from digest.store.claims import (
    Claim,
    SubscriberRow,
    active_page,
    claim,
    count_active,
    release,
    renew,
    settled,
    take_over,
)
from digest.store.outbox import make_owner

log = logging.getLogger(__name__)


class Scheduled(schedule.HasSchedule, Protocol):
    """A subscriber as due_editions reads it: a stored row with a schedule."""

    @property
    def id(self) -> int | None: ...


def due_editions(
    engine: Engine, subscribers: Sequence[Scheduled], now: datetime, everyone: bool = False
) -> dict[int, str]:
    """Subscriber id -> edition key for every subscriber whose digest is due at `now`.

    Due means their latest scheduled slot (in their own zone and frequency) came after
    their previous edition, so a run after any downtime yields one catch-up edition.
    `everyone` (`digest run --now`) makes every subscriber due with today's edition
    (their local date), so even then nobody gets two digests for one day.
    """
    last = {} if everyone else store.last_editions(engine, [_stored_id(s) for s in subscribers])
    out: dict[int, str] = {}
    for sub in subscribers:
        plan, ok = schedule.checked(sub)
        if not ok:
            log_event(
                log,
                "schedule.unusable",
                logging.WARNING,
                subscriber=sub.id,
                timezone=sub.timezone,
                send_at=sub.send_at,
                frequency=sub.frequency,
                using="UTC 07:00 daily",
            )
        if everyone:
            out[_stored_id(sub)] = schedule.edition_at(plan, now)
            continue
        at, edition = last.get(_stored_id(sub)) or (None, None)
        slot = schedule.due_slot(plan, now, at, edition)
        if slot is not None:
            out[_stored_id(sub)] = slot.edition
    return out


def _stored_id(sub: Scheduled) -> int:
    """The id of a subscriber read from the database: the model allows None only for a
    row not inserted yet, which the pipeline never sees."""
    assert sub.id is not None, "subscriber not stored"
    return sub.id


def make_plan(engine: Engine, settings: Settings, now: datetime, dry_run: bool) -> EditionPlan:
    """The edition's shared facts, read once: the newest paper, where a first digest
    starts (papers first seen in the last DIGEST_FIRST_DIGEST_DAYS), the lease owner."""
    since = now - timedelta(days=settings.first_digest_days)
    return EditionPlan(
        settings,
        now,
        store.max_paper_seq(engine),
        store.seq_first_seen_since(engine, since),
        make_owner(),
        dry_run,
    )


class EditionRun:
    """One process's share of an edition: claims pages of due subscribers, keeps a
    bounded number of chunks in flight, renews its leases, adds up the reports."""

    def __init__(
        self,
        engine: Engine,
        runner: ChunkRunner,
        on_chunk: Callable[[], None] | None,
        advance: Callable[[int], None],
    ) -> None:
        self.engine = engine
        self.runner = runner
        self.plan = runner.plan
        self.settings = runner.plan.settings
        self.on_chunk = on_chunk
        self.advance = advance
        self.report = BuildReport()
        # Each chunk in flight, with its claims (to count what a broken pool wrote).
        self.in_flight: dict[Future[BuildReport], Sequence[Claim]] = {}
        self.mine: set[int] = set()  # subscribers whose claims this run took over
        self.not_due = 0
        self.renewed = time.monotonic()
        self.broken: BrokenProcessPool | None = None  # the build workers broke
        self.lost: list[Claim] = []  # claims of chunks whose report the broken pool lost
        self.error: BaseException | None = None  # a database (or disk) error stopped it

    def stopped(self, stop: threading.Event | None) -> bool:
        """Claim nothing more: a shutdown, a database error, or no build workers left."""
        return (
            self.broken is not None
            or self.error is not None
            or (stop is not None and stop.is_set())
        )

    def page(self, subs: Sequence[SubscriberRow], editions: Mapping[int, str]) -> None:
        """Claim the due subscribers of a page and build their claims."""
        wanted = [(s, editions[s.id]) for s in subs if s.id in editions]
        # A claim taken over is built by this run, whatever the schedule says now.
        later = sum(1 for s in subs if s.id not in editions and s.id not in self.mine)
        self.not_due += later
        self.advance(later)
        if not wanted:
            return
        if self.plan.dry_run:
            done = store.editions_done(self.engine, {s.id: e for s, e in wanted})
            todo = [(s, e, 0) for s, e in wanted if (s.id, e) not in done]
            self.report.already += len(wanted) - len(todo)
            self.advance(len(wanted) - len(todo))
            self._collect(self.runner.preview(todo))
            return
        s = self.settings
        claims = claim(self.engine, wanted, self.plan.owner, s.lease_seconds, self.plan.now)
        lost = len(wanted) - len(claims)
        lost -= sum(1 for sub, _ in wanted if sub.id in self.mine)
        self.report.already += lost
        self.advance(lost)
        self.submit(claims)

    def take_over(self, stop: threading.Event | None = None) -> None:
        """Build the claims dead or stalled processes left in `building`."""
        if self.plan.dry_run:
            return
        while not self.stopped(stop):
            s = self.settings
            claims = take_over(self.engine, self.plan.owner, s.edition_chunk, s.lease_seconds)
            if not claims:
                return
            log_event(log, "edition.take_over", logging.WARNING, claims=len(claims))
            self.mine.update(c.subscriber_id for c in claims)
            self.report.taken_over += len(claims)
            self.submit(claims)

    def submit(self, claims: Sequence[Claim]) -> None:
        for lo in range(0, len(claims), self.settings.edition_chunk):
            while len(self.in_flight) >= self.runner.ahead:
                self._wait_for_one()
            chunk = claims[lo : lo + self.settings.edition_chunk]
            self.in_flight[self.runner.submit(chunk)] = chunk
            self._reap()

    def finish(self) -> BuildReport:
        while self.in_flight:
            self._wait_for_one()
        return self.report

    def fail(self, exc: BaseException) -> BuildReport:
        """A database (or disk) error mid-edition: claim nothing more, let the chunks
        in flight finish where they can (each commits on its own), and report what
        was built, so a run still says what it did before it stopped."""
        self.error = self.error or exc
        while self.in_flight:
            try:
                self._wait_for_one()
            except (DatabaseError, OSError):  # the same fault, seen again
                continue
        return self.report

    def left_behind(self) -> None:
        """After the build workers broke (once they are all gone) or the database
        failed: give up our claims still in `building`, so that the next run takes
        them over at once (if the database lets us; else once their lease ends), and
        say so."""
        why = self.broken or self.error
        if why is None:
            return
        written = self._written_anyway(self.lost)
        self.report.add(written)
        self.advance(written.done)
        if self.on_chunk is not None and written.done:
            self.on_chunk()
        try:
            self.report.unbuilt = release(self.engine, self.plan.owner)
            left = f"{self.report.unbuilt} digest(s) left for the next run"
        except (DatabaseError, OSError):
            left = "the digests not built are left for the next run (after DIGEST_LEASE_SECONDS)"
        if self.broken is None:
            self.report.error = f"database: {failure(why)}"
        self.report.broken = f"{self.report.error or self.broken}; {left}"
        log_event(log, "edition.broken", logging.ERROR, error=self.report.broken)

    def _wait_for_one(self) -> None:
        wait(self.in_flight, timeout=self.settings.lease_seconds / 4, return_when=FIRST_COMPLETED)
        self._reap()

    def _reap(self) -> None:
        for future in [f for f in self.in_flight if f.done()]:
            self._collect(future, self.in_flight.pop(future))
        if self.error is None and time.monotonic() - self.renewed > self.settings.lease_seconds / 4:
            renew(self.engine, self.plan.owner, self.settings.lease_seconds)
            self.renewed = time.monotonic()

    def _collect(self, future: Future[BuildReport], claims: Sequence[Claim] = ()) -> None:
        try:
            got = future.result()  # a worker's error is this run's error
        except BrokenProcessPool as exc:
            # A build worker died (killed, out of memory): no chunk can be built any
            # more; the run stops claiming, sends what was built and says so.
            self.broken = self.broken or exc
            self.lost.extend(claims)
            return
        self.report.add(got)
        self.advance(got.done)
        if self.on_chunk is not None and got.done:
            self.on_chunk()

    def _written_anyway(self, claims: Sequence[Claim]) -> BuildReport:
        """What chunks whose reports were lost wrote all the same (a worker that
        committed its chunk was killed, with the others, before its report came
        back): the sender sends those digests, so the run's report counts them and
        the reports of all runs still add up. Asked once the workers are gone."""
        got = BuildReport()
        if not claims:
            return got
        try:
            rows = settled(self.engine, [c.digest_id for c in claims])
        except (DatabaseError, OSError):  # counted by nobody: said in `broken` anyway
            return got
        for status, has_papers in rows:
            got.count(status, has_papers)
        return got


def build_due(
    engine: Engine,
    settings: Settings,
    now: datetime,
    everyone: bool = False,
    dry_run: bool = False,
    on_chunk: Callable[[], None] | None = None,
    track: Tracker = no_tracking,
    stop: threading.Event | None = None,
) -> tuple[BuildReport, int]:
    """Build this process's share of every due digest, a chunk at a time; returns the
    report and how many active subscribers were not due. `on_chunk` hears each commit
    (the sender starts on it); `stop` (a shutdown) ends claiming, and what is claimed
    already is still built."""
    total = count_active(engine)
    plan = make_plan(engine, settings, now, dry_run)
    with ChunkRunner(plan, engine, build_workers(settings, total)) as runner:
        run = EditionRun(engine, runner, on_chunk, track("building digests", total))
        try:
            run.take_over(stop)
            after = 0
            while not run.stopped(stop):
                page = active_page(engine, after, settings.edition_chunk)
                if not page:
                    break
                after = page[-1].id
                run.page(page, due_editions(engine, page, now, everyone))
            run.take_over(stop)
            report = run.finish()
        except (DatabaseError, OSError) as exc:
            report = run.fail(exc)
    run.left_behind()
    return report, run.not_due


def failure(exc: BaseException) -> str:
    """A database error in one line: the driver's words, without SQLAlchemy's
    statement and parameters (a report must not carry the rows' data)."""
    reason = getattr(exc, "orig", None) or exc
    return (str(reason).strip().splitlines() or [type(reason).__name__])[0][:300]


def build_editions(
    engine: Engine,
    settings: Settings,
    subscribers: Sequence[Subscriber],
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    editions: Mapping[int, str] | None = None,
) -> BuildReport:
    """Build the digests of these subscribers in this process (chunked and claimed
    like `build_due`). `editions` (from `due_editions`) gives each subscriber's edition
    key; by default it is their local date at `now`."""
    now = now or utcnow()
    plan = make_plan(engine, settings, now, dry_run)
    rows = [_row_of(s) for s in subscribers]
    keys = {
        r.id: (editions or {}).get(r.id) or schedule.edition_at(schedule.checked(r)[0], now)
        for r in rows
    }
    with ChunkRunner(plan, engine, 1) as runner:
        run = EditionRun(engine, runner, None, progress or (lambda n: None))
        for lo in range(0, len(rows), settings.edition_chunk):
            run.page(rows[lo : lo + settings.edition_chunk], keys)
        return run.finish()


def _row_of(sub: Subscriber) -> SubscriberRow:
    return SubscriberRow(
        _stored_id(sub),
        sub.email,
        sub.keywords,
        sub.max_papers,
        sub.min_score,
        sub.timezone,
        sub.send_at,
        sub.frequency,
        sub.weekday,
        sub.notify_empty,
        sub.last_paper_seq,
        sub.interest,
        list(sub.likes or []),
        sub.token_version,
    )
