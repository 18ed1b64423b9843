"""The sender: claims due outbox rows, sends them, and records what the server said.
The queue's statements live in `digest.store.outbox`; this is the async state
machine around them.

Guarantees, and what gives them:
- Never twice: the unique (subscriber, edition) row is the only thing that is sent,
  and a row leaves the due states (pending, retrying) only by being claimed. A claim
  is one UPDATE ... RETURNING that takes only unleased rows, so two senders (a cron
  `digest run` beside `digest serve`) never hold the same row.
- Never lost: a row whose sender died stays `sending` with a lease; it is claimed
  again when the lease runs out, or at once when the owner was a process on this
  machine that no longer exists. So a crash can only duplicate a message the server
  had accepted in the last moments before it, whose result was not recorded yet.
- Fast: claims and results rewrite small rows (the message bytes live in their own
  table and are read once per claimed batch); results are written in batches (one
  executemany per RECORD_BATCH results or RECORD_EVERY seconds, whichever first);
  database work runs in a thread beside the sends, and only a bounded number of rows
  (with their messages) is in memory.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from digest.config import Settings
from digest.delivery.base import SendResult, Transport
from digest.delivery.breaker import CircuitBreaker
from digest.delivery.dkim import DkimSigner, make_signer
from digest.delivery.ratelimit import SendRateLimiter
from digest.models import utcnow
from digest.states import DigestStatus
from digest.store import Engine
from digest.store.outbox import (
    Claimed,
    Outcome,
    cancel_for_inactive,
    claim,
    make_owner,
    next_due_at,
    release,
    release_dead_leases,
    renew_leases,
    sent_in_last_hour,
)
from digest.store.outbox import record as record_outcomes

CLAIM_BATCH = 200
RECORD_BATCH = 200
RECORD_EVERY = 0.2  # seconds: the most a crash can leave unrecorded
MAX_ERRORS_KEPT = 100

T = TypeVar("T")


@dataclass
class SendReport:
    """What one sending pass did. `failed` counts digests not delivered by its end."""

    sent: int = 0
    bounced: int = 0
    gave_up: int = 0
    deferred: int = 0
    attempts: int = 0
    suspended: int = 0
    breaker_trips: int = 0
    stopped: str = ""  # why the run stopped with work left (breaker, rate limit)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.bounced + self.gave_up + self.deferred

    def note_error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)


@dataclass
class Attempt:
    row: Claimed
    result: SendResult
    at: datetime


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
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.transport = transport
        self.signer = signer
        self.pool = pool
        self.rng = rng or random.Random()
        self.owner = make_owner()
        self.report = SendReport()
        self.deadline = time.monotonic() + settings.run_retry_window_seconds
        self.lease = settings.lease_seconds
        self.breaker = CircuitBreaker(settings.breaker_threshold, settings.retry_base_seconds)
        self.buffer: deque[Claimed] = deque()
        self.prefetch: asyncio.Task[list[Claimed]] | None = None
        self.in_flight: dict[asyncio.Task[None], Claimed] = {}
        self.waiter: asyncio.Future[None] | None = None
        self.pending: list[Attempt] = []
        self.flushing: asyncio.Task[None] | None = None
        self.first_pending_at = 0.0
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
        cancel_for_inactive(self.engine)
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
            await self._flush(wait=True)
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
                await self._flush(wait=True)
                if not await self._wait_for_retry():
                    return
                continue
            if self.limiter.buckets and not await self.limiter.acquire(self.deadline):
                self.buffer.appendleft(row)
                self.report.stopped = "rate limit"
                return
            while len(self.in_flight) >= self.pool:
                await self._wait_for_a_send()
            if self.breaker.is_open:  # tripped while we waited for a free connection
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
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        timer = loop.call_later(RECORD_EVERY, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None

    async def _send(self, row: Claimed) -> None:
        try:
            message = row.message if self.signer is None else self.signer.sign(row.message)
            result = await self.transport.send(self.settings.from_address, row.recipient, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a signing or transport bug must not lose the row
            result = SendResult(False, f"transport error: {type(exc).__name__}: {exc}")
        self.breaker.record(result.ok)
        self.report.attempts += 1
        if not result.ok:
            self.report.note_error(f"{row.recipient}: {result.reply}")
        if not self.pending:
            self.first_pending_at = time.monotonic()
        row.message = b""  # sent: the bytes need not wait in memory for the record
        self.pending.append(Attempt(row, result, utcnow()))

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
        now = time.monotonic()
        if self.pending and (
            len(self.pending) >= RECORD_BATCH or now - self.first_pending_at >= RECORD_EVERY
        ):
            await self._flush(wait=False)
        if now - self.renewed_at >= self.lease / 3:
            self.renewed_at = now
            await self._db(renew_leases, self.engine, self.owner, self.lease)

    async def _flush(self, wait: bool) -> None:
        """Record pending results; one flush at a time, in a thread beside the sends."""
        if self.flushing is not None:
            if not self.flushing.done() and not wait:
                return
            await self.flushing
            self.flushing = None
        if self.pending:
            batch, self.pending = self.pending, []
            self.flushing = asyncio.create_task(self._write(batch))
        if wait and self.flushing is not None:
            await self.flushing
            self.flushing = None

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
        await self._flush(wait=True)
        if self.prefetch is not None:
            self.buffer.extend(await self.prefetch)
            self.prefetch = None
        # Give back what we hold: it was never tried, and another sender may get it.
        await self._db(release, self.engine, [r.id for r in self.buffer], self.owner)
        self.buffer.clear()
        if not self.breaker.is_open:
            return True
        pause = self.breaker.seconds_to_probe()
        if time.monotonic() + pause > self.deadline:
            self.report.stopped = (
                f"circuit breaker: {self.breaker.failures} sends in a row failed; paused"
            )
            return False
        await asyncio.sleep(pause)
        self.breaker.start_probe()
        row = await self._next_row_for_probe()
        if row is None:
            self.breaker.record(True)  # nothing left to probe with: nothing to protect
            return True
        self._start(row)
        while self.in_flight:
            await self._wait_for_a_send()
        await self._flush(wait=True)
        return True

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
        await asyncio.sleep(min(wait + 0.005, max(0.0, self.deadline - time.monotonic())))
        return True


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def send_due(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    pool: int | None = None,
    rng: random.Random | None = None,
) -> SendReport:
    """Send every due digest (and retries coming due within the run's window)."""
    signer = make_signer(settings)
    width = pool or getattr(transport, "pool_size", None) or settings.smtp_pool_size
    return await Sender(engine, settings, transport, signer, width, rng).run()
