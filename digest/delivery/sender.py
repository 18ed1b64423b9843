"""The sender: claims due outbox rows, sends them, and records what the server said.
The queue's statements live in `digest.store.outbox`; this is the async state
machine around them.

Never twice and never lost are the queue's guarantees (`digest.store.outbox` says
what gives them); the sender adds:
- Few duplicates after a crash: a connection's result is committed before that
  connection carries its next message (a send task ends only when its result is
  recorded, and at most `pool` tasks run). So a crash duplicates at most one message
  per connection: the one the server accepted just before it. Results are written by
  group commit: one writer takes everything that finished while the previous commit
  ran (and a few ms more, unless every send in flight is already done), in one
  executemany, so the commits keep pace with any number of connections.
- Fast: claims and results rewrite small rows (the message bytes live in their own
  table and are read once per claimed batch); database work runs in a thread beside
  the sends, and only a bounded number of rows (with their messages) is in memory.
- Never silent: a dead relay (no connection at all) stops the run after a few quick
  probes (DIGEST_RELAY_DOWN_WAIT_SECONDS), and every wait says what it waits for and
  until when, through `say` (the CLI prints it on stderr; the scheduler logs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from digest.config import Settings
from digest.delivery.base import SendResult, Transport, clean_reply
from digest.delivery.breaker import CircuitBreaker
from digest.delivery.dkim import DkimSigner, make_signer
from digest.delivery.envelope import envelope_sender
from digest.delivery.ratelimit import SendRateLimiter
from digest.logs import log_event
from digest.models import utcnow
from digest.states import DigestStatus
from digest.store import Engine
from digest.store.outbox import (
    Claimed,
    Outcome,
    cancel_for_inactive,
    claim,
    count_due,
    make_owner,
    next_due_at,
    not_to_send,
    release,
    release_dead_leases,
    renew_leases,
    sent_in_last_hour,
)
from digest.store.outbox import record as record_outcomes

CLAIM_BATCH = 200
RECORD_EVERY = 0.2  # seconds between wake-ups while every connection is stuck
# Group commit: the writer waits up to GROUP_WAIT for more results (never once every
# send in flight has finished), so a commit carries ~10 rows rather than ~3: a row
# costs ~13 us to record in a batch of 10 and ~27 us in one of 3.
GROUP_WAIT = 0.004
GROUP_MAX = 64
MAX_ERRORS_KEPT = 100
RELAY_FIRST_PROBE = 2.0  # seconds: then 4, 8, ... while DIGEST_RELAY_DOWN_WAIT_SECONDS lasts
# Right before a send, the subscriber must have been seen active within RECHECK_AFTER
# seconds; if not, the row and the next CHECK_BATCH - 1 held ones are checked in one
# query. Fast sending costs a query per RECHECK_AFTER; a held row (a rate limit, a
# slow relay, a breaker pause) is checked again after its wait.
RECHECK_AFTER = 0.25
CHECK_BATCH = 200

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class SendReport:
    """What one sending pass did. `failed` counts digests not delivered by its end."""

    sent: int = 0
    bounced: int = 0
    gave_up: int = 0
    deferred: int = 0
    attempts: int = 0
    suspended: int = 0
    # digests not sent: their subscriber unsubscribed, paused, was suspended or
    # deleted after they were queued
    not_sent: int = 0
    breaker_trips: int = 0
    stopped: str = ""  # why the run stopped with work left (breaker, rate limit)
    # reply -> (how many sends got it, the first recipient that did)
    error_counts: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.bounced + self.gave_up + self.deferred

    def note_error(self, recipient: str, reply: str) -> None:
        """Count a failed send; identical replies collapse into one line (a dead relay
        gives the same reply for every message: one line with a count says it all)."""
        count, first = self.error_counts.get(reply, (0, recipient))
        if count or len(self.error_counts) < MAX_ERRORS_KEPT:
            self.error_counts[reply] = (count + 1, first)

    @property
    def errors(self) -> list[str]:
        """One line per distinct reply: `reader@x: 550 ...`, or `17 x 421 ...`."""
        return [
            f"{first}: {reply}" if count == 1 else f"{count} x {reply}"
            for reply, (count, first) in self.error_counts.items()
        ]


@dataclass
class Attempt:
    row: Claimed
    result: SendResult
    at: datetime
    # Done once the result is committed: the connection may then take its next message.
    recorded: asyncio.Future[None] | None = None


# ---------------------------------------------------------------- results


def retry_delay(base: float, attempts: int, rng: random.Random) -> float:
    """Exponential backoff with +-20% jitter: base, 2*base, 4*base, ... seconds."""
    return base * (2 ** min(attempts - 1, 30)) * rng.uniform(0.8, 1.2)


@dataclass
class Recorded:
    sent: int = 0
    bounced: int = 0
    gave_up: int = 0
    suspended: int = 0
    retrying_ids: list[int] = field(default_factory=list)


def outcomes(
    attempts: list[Attempt], settings: Settings, rng: random.Random
) -> tuple[list[Outcome], Counter[int], Recorded]:
    """What each attempt means for its row: sent, bounced (a hard bounce counted on
    its subscriber), retrying after a backoff, or failed once the retry age is over."""
    counts = Recorded()
    rows: list[Outcome] = []
    bounces: Counter[int] = Counter()
    max_age = timedelta(hours=settings.retry_max_age_hours)
    for a in attempts:
        reply = a.result.reply[:500]
        if a.result.ok:
            rows.append(Outcome(a.row.id, DigestStatus.SENT, reply, None, a.at, None))
            counts.sent += 1
        elif a.result.permanent and a.result.message_refused:
            rows.append(Outcome(a.row.id, DigestStatus.FAILED, reply, reply, None, None))
            counts.gave_up += 1
        elif a.result.permanent:
            rows.append(Outcome(a.row.id, DigestStatus.BOUNCED, reply, reply, None, None))
            bounces[a.row.subscriber_id] += 1
            counts.bounced += 1
        else:
            delay = timedelta(
                seconds=retry_delay(settings.retry_base_seconds, a.row.attempts + 1, rng)
            )
            if a.at + delay > a.row.age_from + max_age:
                gave_up = f"gave up after {a.row.attempts + 1} attempt(s): {reply}"[:500]
                rows.append(Outcome(a.row.id, DigestStatus.FAILED, gave_up, gave_up, None, None))
                counts.gave_up += 1
            else:
                rows.append(
                    Outcome(a.row.id, DigestStatus.RETRYING, reply, reply, None, a.at + delay)
                )
                counts.retrying_ids.append(a.row.id)
    return rows, bounces, counts


def record(
    engine: Engine, attempts: list[Attempt], owner: str, settings: Settings, rng: random.Random
) -> Recorded:
    """Write a batch of results in one transaction: only rows still leased to `owner`."""
    rows, bounces, counts = outcomes(attempts, settings, rng)
    counts.suspended = record_outcomes(engine, rows, owner, bounces, settings.max_bounces)
    return counts


# ---------------------------------------------------------------- the sender


class Sender:
    """One sending pass: claim, send through `transport` with `pool` in flight, record.

    The pass ends when nothing is due and no retry comes due before `deadline` (the
    run's retry window), or earlier when the breaker or the rate limit would hold it
    past the deadline; rows it holds then are given back untouched.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        transport: Transport,
        signer: DkimSigner | None,
        pool: int,
        rng: random.Random | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.say = say or _log_say
        self.settings = settings
        self.transport = transport
        self.signer = signer
        self.pool = pool
        self.rng = rng or random.Random()
        self.owner = make_owner()
        self.report = SendReport()
        self.deadline = time.monotonic() + settings.run_retry_window_seconds
        self.lease = settings.lease_seconds
        self.breaker = CircuitBreaker(
            settings.breaker_threshold, settings.retry_base_seconds, relay_pause=RELAY_FIRST_PROBE
        )
        self.relay = getattr(transport, "relay", "the relay")
        self.buffer: deque[Claimed] = deque()
        self.prefetch: asyncio.Task[list[Claimed]] | None = None
        self.in_flight: dict[asyncio.Task[None], Claimed] = {}
        self.waiter: asyncio.Future[None] | None = None
        self.pending: list[Attempt] = []
        self.flushing: asyncio.Task[None] | None = None
        self.more_results: asyncio.Future[None] | None = None
        self.write_error: BaseException | None = None
        self.renewed_at = time.monotonic()
        self.deferred: set[int] = set()
        self.limiter = SendRateLimiter(0, 0)
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-db")

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run database work on the one database thread: beside the sends, and never
        two writes at once (SQLite would make one of them sleep on its busy lock)."""
        return await asyncio.get_running_loop().run_in_executor(self.db, fn, *args)

    async def run(self) -> SendReport:
        try:
            return await self._run()
        finally:
            self.db.shutdown(wait=False)

    def _prepare(self) -> list[Claimed]:
        """Start-up in one trip to the database thread: take over dead senders' rows,
        drop digests of people no longer active, read the hour's count, claim."""
        release_dead_leases(self.engine, self.owner)
        self.report.not_sent += cancel_for_inactive(self.engine)
        sent_recently = sent_in_last_hour(self.engine) if self.settings.rate_per_hour else 0
        self.limiter = SendRateLimiter(
            self.settings.rate_per_second, self.settings.rate_per_hour, sent_recently
        )
        # A small first batch, so that sending starts at once; the rest follow in
        # full batches claimed beside the sends.
        return claim(self.engine, min(CLAIM_BATCH, 4 * self.pool), self.owner, self.lease)

    async def _run(self) -> SendReport:
        await self.transport.open()
        self.buffer.extend(await self._db(self._prepare))
        try:
            await self._loop()
            if self.in_flight:
                await asyncio.gather(*self.in_flight)
        finally:
            # Whatever happens (even cancellation), record what we know and hand back
            # what we hold, so the next run neither loses nor repeats it. A send cut
            # off midway is given back too: its outcome is unknown, like after a crash.
            for task in self.in_flight:
                task.cancel()
            if self.in_flight:
                await asyncio.gather(*self.in_flight, return_exceptions=True)
            self.buffer.extend(self.in_flight.values())
            self.in_flight.clear()
            if self.prefetch is not None:
                self.buffer.extend(await self.prefetch)
                self.prefetch = None
            await self._flush()
            await self._db(release, self.engine, [r.id for r in self.buffer], self.owner)
            self.buffer.clear()
            await self.transport.close()
        self.report.deferred = len(self.deferred)
        self.report.breaker_trips = self.breaker.trips
        return self.report

    async def _loop(self) -> None:
        while True:
            await self._housekeeping()
            if self.breaker.is_open or self.breaker.probing:
                if not await self._wait_out_breaker():
                    return
                continue
            row = await self._next_row()
            if row is None:
                if self.in_flight:
                    await self._wait_for_a_send()
                    continue
                await self._flush()
                if not await self._wait_for_retry():
                    return
                continue
            while len(self.in_flight) >= self.pool:
                await self._wait_for_a_send()
            if self.breaker.is_open:  # tripped while we waited for a free connection
                self.buffer.appendleft(row)
                continue
            if not await self._rate_slot(row):
                return
            if not await self._still_subscribed(row):  # left while the row waited
                self.limiter.give_back()
                continue
            if self.breaker.is_open:  # tripped while we waited (rate limit, the check)
                self.limiter.give_back()
                self.buffer.appendleft(row)
                continue
            self._start(row)

    def _start(self, row: Claimed) -> None:
        task = asyncio.create_task(self._send(row))
        self.in_flight[task] = row
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            self.in_flight.pop(task, None)
        _wake(self.waiter)

    async def _wait_for_a_send(self) -> None:
        """Until a send finishes, or RECORD_EVERY passes (results must be written even
        while every connection is stuck on a slow server)."""
        if not self.in_flight:
            return
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        try:
            await _until_woken(waiter, RECORD_EVERY)
        finally:
            self.waiter = None

    async def _send(self, row: Claimed) -> None:
        try:
            message = row.message if self.signer is None else self.signer.sign(row.message)
            sender = envelope_sender(self.settings, row.subscriber_id)
            result = await self.transport.send(sender, row.recipient, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a signing or transport bug must not lose the row
            result = SendResult(False, f"transport error: {type(exc).__name__}: {exc}")
        result.reply = clean_reply(result.reply)
        self.breaker.record(result.ok, result.relay_down, result.reply)
        self.report.attempts += 1
        if not result.ok:
            self.report.note_error(row.recipient, result.reply)
        row.message = b""  # sent: the bytes need not wait in memory for the record
        attempt = Attempt(row, result, utcnow(), asyncio.get_running_loop().create_future())
        self.pending.append(attempt)
        _wake(self.more_results)
        self._start_writer()
        assert attempt.recorded is not None
        # This task holds its connection's place in the pool until the result is
        # committed: a crash then finds at most one unrecorded message per connection.
        with contextlib.suppress(Exception):  # a failed write is raised by the loop
            await attempt.recorded

    async def _next_row(self) -> Claimed | None:
        """The next claimed row; claims the following batch in the background."""
        if not self.buffer:
            if self.prefetch is None:
                self.prefetch = asyncio.create_task(self._claim())
            self.buffer.extend(await self.prefetch)
            self.prefetch = None
            if not self.buffer:
                return None
        row = self.buffer.popleft()
        if len(self.buffer) <= CLAIM_BATCH // 2 and self.prefetch is None:
            self.prefetch = asyncio.create_task(self._claim())
        return row

    async def _claim(self) -> list[Claimed]:
        if self.breaker.is_open or self.breaker.probing:
            return []
        return await self._db(claim, self.engine, CLAIM_BATCH, self.owner, self.lease)

    async def _housekeeping(self) -> None:
        if self.write_error is not None:
            raise self.write_error
        now = time.monotonic()
        if now - self.renewed_at >= self.lease / 3:
            self.renewed_at = now
            await self._db(renew_leases, self.engine, self.owner, self.lease)

    def _start_writer(self) -> None:
        """Group commit: one writer at a time; it takes whatever finished meanwhile."""
        if self.flushing is None or self.flushing.done():
            self.flushing = asyncio.create_task(self._writer())

    async def _writer(self) -> None:
        while self.pending:
            if self.write_error is not None:  # results after a failed write: not recorded
                for a in self.pending:
                    _settle(a.recorded, self.write_error)
                self.pending = []
                return
            await self._gather_results()
            batch, self.pending = self.pending, []
            try:
                await self._write(batch)
            except Exception as exc:  # surfaced by the loop; the rows keep their lease
                self.write_error = exc
                for a in batch + self.pending:
                    _settle(a.recorded, exc)
                self.pending = []
                _wake(self.waiter)
                return
            for a in batch:
                _settle(a.recorded)

    async def _gather_results(self) -> None:
        """Let results gather for up to GROUP_WAIT; at once when every send in flight
        has finished (nothing more can come) or GROUP_MAX are waiting."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GROUP_WAIT
        while len(self.pending) < min(GROUP_MAX, len(self.in_flight)):
            left = deadline - loop.time()
            if left <= 0:
                return
            self.more_results = more = loop.create_future()
            try:
                await _until_woken(more, left)
            finally:
                self.more_results = None

    async def _flush(self) -> None:
        """Until every result so far is committed."""
        while self.flushing is not None and not self.flushing.done():
            await asyncio.shield(self.flushing)
        if self.pending:
            self._start_writer()
            await self._flush()
        if self.write_error is not None:
            raise self.write_error

    async def _write(self, batch: list[Attempt]) -> None:
        got = await self._db(record, self.engine, batch, self.owner, self.settings, self.rng)
        r = self.report
        r.sent += got.sent
        r.bounced += got.bounced
        r.gave_up += got.gave_up
        r.suspended += got.suspended
        self.deferred.difference_update(a.row.id for a in batch)
        self.deferred.update(got.retrying_ids)

    async def _wait_out_breaker(self) -> bool:
        """Pause while the breaker is open, then probe with one message."""
        while self.in_flight:
            await self._wait_for_a_send()
        await self._flush()
        if self.prefetch is not None:
            self.buffer.extend(await self.prefetch)
            self.prefetch = None
        # Give back what we hold: it was never tried, and another sender may get it.
        await self._db(release, self.engine, [r.id for r in self.buffer], self.owner)
        self.buffer.clear()
        if not self.breaker.is_open:
            return True
        pause = self.breaker.seconds_to_probe()
        if await self._give_up(pause):
            return False
        self._say_waiting(pause)
        if not await self._pause(pause):
            return False
        self.breaker.start_probe()
        while True:
            row = await self._next_row_for_probe()
            if row is None:
                self.breaker.record(True)  # nothing left to probe with: nothing to protect
                return True
            if not await self._rate_slot(row):  # a probe is a send like any other
                return False
            if await self._still_subscribed(row):
                break
            self.limiter.give_back()
        self._start(row)
        while self.in_flight:
            await self._wait_for_a_send()
        await self._flush()
        return True

    async def _still_subscribed(self, row: Claimed) -> bool:
        """Whether `row` may be sent now: its subscriber was seen active within
        RECHECK_AFTER seconds. If not seen so lately, it and the next held rows are
        checked in one query; rows of someone who unsubscribed, paused, was suspended
        or deleted meanwhile are marked failed (`outbox.not_to_send`) and dropped."""
        now = time.monotonic()
        if now - row.checked_at < RECHECK_AFTER:
            return True
        batch = [row, *itertools.islice(self.buffer, CHECK_BATCH - 1)]
        pairs = [(r.id, r.subscriber_id) for r in batch]
        stopped = await self._db(not_to_send, self.engine, pairs, self.owner)
        for r in batch:
            r.checked_at = now  # as of before the query: never fresher than it was
        if stopped:
            self.report.not_sent += len(stopped)
            self.buffer = deque(r for r in self.buffer if r.id not in stopped)
            log_event(log, "delivery.not_sent", logging.INFO, count=len(stopped))
        return row.id not in stopped

    async def _rate_slot(self, row: Claimed) -> bool:
        """Wait for the rate limits to allow one more send; False (the row given back)
        when that would be past the run's window, or a stop cut the wait short."""
        if not self.limiter.buckets or await self.limiter.acquire(self.deadline, self._rate_wait):
            return True
        self.buffer.appendleft(row)
        if not self._told_to_stop():
            self.report.stopped = "rate limit"
        return False

    async def _rate_wait(self, seconds: float) -> bool:
        """A wait for a rate slot: said when it is a long one (never a silent wait)."""
        if seconds >= 1:
            self.say(
                f"rate limit (DIGEST_RATE_PER_HOUR / DIGEST_RATE_PER_SECOND): next send at "
                f"{_clock(seconds)}"
            )
        return await self._pause(seconds)

    def _told_to_stop(self) -> bool:
        """Whether a shutdown asked this pass to end (a plain pass cannot be told)."""
        return False

    async def _pause(self, seconds: float) -> bool:
        """Wait out the breaker's pause or a rate limit's; False to end the pass
        instead (a sender that can be told to stop cuts the pause short)."""
        await asyncio.sleep(seconds)
        return True

    async def _give_up(self, pause: float) -> bool:
        """Whether to stop rather than wait `pause` for the next probe: past the run's
        window, or (the relay not even reachable) past DIGEST_RELAY_DOWN_WAIT_SECONDS or
        with nothing due to probe it with by then."""
        b = self.breaker
        now = time.monotonic()
        if b.down_since is not None:
            in_time = now + pause - b.down_since <= self.settings.relay_down_wait_seconds
            probe_at = utcnow() + timedelta(seconds=pause)
            if in_time and await self._db(count_due, self.engine, probe_at) > 0:
                return False
            queued = await self._db(count_due, self.engine, None)
            due = await self._db(next_due_at, self.engine)
            when = f", next try at {due:%H:%M:%S} UTC" if due and due > utcnow() else ""
            self.report.stopped = (
                f"SMTP relay {self.relay} unreachable ({b.last_reply}); giving up for this "
                f"run: {queued} digest(s) stay queued for the next run{when}"
            )
            return True
        if now + pause <= self.deadline:
            return False
        self.report.stopped = (
            f"circuit breaker: {b.failures} sends in a row failed (last: {b.last_reply}); "
            "the digests stay queued for the next run"
        )
        return True

    def _say_waiting(self, pause: float) -> None:
        b = self.breaker
        at = _clock(pause)
        if b.down_since is not None:
            self.say(
                f"SMTP relay {self.relay} unreachable ({b.last_reply}); "
                f"next try at {at} (attempt {b.trips + 1})"
            )
        else:
            self.say(
                f"circuit breaker open: {b.failures} sends in a row failed "
                f"(last: {b.last_reply}); next try at {at}"
            )

    async def _next_row_for_probe(self) -> Claimed | None:
        rows = await self._db(claim, self.engine, 1, self.owner, self.lease)
        return rows[0] if rows else None

    async def _wait_for_retry(self) -> bool:
        """Nothing due now: wait for the next retry if it comes due inside the window."""
        due = await self._db(next_due_at, self.engine)
        if due is None:
            return False
        wait = max(0.0, (due - utcnow()).total_seconds())
        if time.monotonic() + wait > self.deadline:
            return False
        if wait >= 1:
            self.say(
                f"waiting for {len(self.deferred) or 'the'} deferred digest(s) to come due "
                f"again; next try at {_clock(wait)} "
                f"(DIGEST_RUN_RETRY_WINDOW_SECONDS; `digest retry` sends them now)"
            )
        await asyncio.sleep(min(wait + 0.005, max(0.0, self.deadline - time.monotonic())))
        return True


def _log_say(text: str) -> None:
    log_event(log, "delivery.waiting", logging.WARNING, detail=text)


def _clock(seconds_from_now: float) -> str:
    """`07:31:05 UTC`: when a wait of `seconds_from_now` ends."""
    return (utcnow() + timedelta(seconds=seconds_from_now)).strftime("%H:%M:%S UTC")


def _settle(future: asyncio.Future[None] | None, error: BaseException | None = None) -> None:
    if future is not None and not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def _until_woken(waiter: asyncio.Future[None], seconds: float) -> None:
    """Until `waiter` is woken (`_wake`) or `seconds` pass."""
    timer = asyncio.get_running_loop().call_later(seconds, _wake, waiter)
    try:
        await waiter
    finally:
        timer.cancel()


async def send_due(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    pool: int | None = None,
    rng: random.Random | None = None,
    say: Callable[[str], None] | None = None,
) -> SendReport:
    """Send every due digest (and retries coming due within the run's window); `say`
    hears every wait (what for, until when); by default it is logged."""
    signer = make_signer(settings)
    width = pool or getattr(transport, "pool_size", None) or settings.smtp_pool_size
    return await Sender(engine, settings, transport, signer, width, rng, say).run()
