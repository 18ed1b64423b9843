"""The outbox: digests are rows written before any is sent; senders claim due rows
with a lease, send them, and record what the server said.

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
import contextlib
import functools
import os
import random
import socket
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, text, update
from sqlalchemy.engine import Engine

from digest.config import Settings
from digest.delivery.base import SendResult, Transport
from digest.delivery.breaker import CircuitBreaker
from digest.delivery.dkim import DkimSigner, make_signer
from digest.delivery.ratelimit import RateLimiter
from digest.models import Digest, DigestMessage, Subscriber, utcnow

DUE_STATUSES = ("pending", "retrying")
CLAIM_BATCH = 200
RECORD_BATCH = 200
RECORD_EVERY = 0.2  # seconds: the most a crash can leave unrecorded
MAX_ERRORS_KEPT = 100
NO_MESSAGE = "not sent: no rendered message is stored for this digest"

T = TypeVar("T")
_T = Digest.__table__
_S = Subscriber.__table__
_M = DigestMessage.__table__


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
class Claimed:
    """A leased row: what sending and recording it need, nothing more."""

    id: int
    subscriber_id: int
    recipient: str
    message: bytes
    attempts: int
    age_from: datetime


@dataclass
class Attempt:
    row: Claimed
    result: SendResult
    at: datetime


# ---------------------------------------------------------------- leases


# Made once per process: it tells this process from an earlier one that had its pid.
_PROCESS_TOKEN = uuid.uuid4().hex[:12]


def make_owner() -> str:
    """host|pid|token, the lease owner for every sender in this process."""
    return f"{socket.gethostname()}|{os.getpid()}|{_PROCESS_TOKEN}"


def _owner_is_dead(owner: str, me: str) -> bool:
    """True only when sure: a process on this machine that is gone. A lease of an
    owner elsewhere (or one we cannot judge) waits for its expiry."""
    host, _, rest = owner.partition("|")
    pid_text = rest.partition("|")[0]
    if host != me.partition("|")[0] or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner != me  # an earlier process that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    with contextlib.suppress(OSError, IndexError):  # a zombie is dead too
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    return False


def release_dead_leases(engine: Engine, me: str) -> int:
    """Make rows held by a dead sender on this machine claimable now."""
    now = utcnow()
    with engine.begin() as conn:
        owners = conn.execute(
            select(_T.c.lease_owner)
            .where(_T.c.status == "sending")
            .where(_T.c.lease_until >= now)
            .distinct()
        ).scalars()
        dead = [o for o in owners if o and _owner_is_dead(o, me)]
        if not dead:
            return 0
        return conn.execute(
            update(_T).where(_T.c.lease_owner.in_(dead)).values(lease_until=None)
        ).rowcount


def cancel_for_inactive(engine: Engine) -> int:
    """Digests queued for someone who since unsubscribed or was suspended: not sent."""
    inactive = select(_S.c.id).where(_S.c.status.in_(("unsubscribed", "suspended")))
    with engine.begin() as conn:
        return conn.execute(
            update(_T)
            .where(_T.c.status.in_(DUE_STATUSES))
            .where(_T.c.subscriber_id.in_(inactive))
            .values(status="failed", last_error="not sent: the subscriber is no longer active")
        ).rowcount


def _due(now: datetime) -> Any:
    return and_(
        _T.c.status.in_(DUE_STATUSES),
        or_(_T.c.next_attempt_at.is_(None), _T.c.next_attempt_at <= now),
    )


def _orphaned(now: datetime) -> Any:
    """A `sending` row without a live lease: its sender died before recording it."""
    return and_(_T.c.status == "sending", or_(_T.c.lease_until.is_(None), _T.c.lease_until < now))


def claim(engine: Engine, limit: int, owner: str, lease_seconds: float) -> list[Claimed]:
    """Lease up to `limit` due rows to `owner` and return them.

    One UPDATE per kind (due, then orphaned) takes the ids an indexed sub-select picks
    (so it stops after `limit` rows, whatever the size of the outbox), checking again
    that each row is free: of two senders racing for a row, one gets it.
    """
    now = utcnow()
    lease = {
        "status": "sending",
        "lease_owner": owner,
        "lease_until": now + timedelta(seconds=lease_seconds),
    }
    rows: list[Any] = []
    with engine.begin() as conn:
        for free in (_due(now), _orphaned(now)):
            want = limit - len(rows)
            if want <= 0:
                break
            picked = select(_T.c.id).where(free).limit(want).scalar_subquery()
            rows += conn.execute(
                update(_T)
                .where(_T.c.id.in_(picked))
                .where(free)
                .values(**lease)
                .returning(
                    _T.c.id,
                    _T.c.subscriber_id,
                    _T.c.recipient,
                    _T.c.attempts,
                    func.coalesce(_T.c.retry_from, _T.c.created_at),
                )
            ).all()
        if not rows:
            return []
        # The bytes live apart (small rows to update): one read for the whole batch.
        messages = dict(
            conn.execute(
                select(_M.c.digest_id, _M.c.message).where(_M.c.digest_id.in_([r[0] for r in rows]))
            ).all()
        )
        unsendable = [r[0] for r in rows if not messages.get(r[0])]
        if unsendable:  # never send an empty mail: fail the row, visibly
            conn.execute(
                update(_T)
                .where(_T.c.id.in_(unsendable))
                .values(
                    status="failed",
                    last_error=NO_MESSAGE,
                    lease_owner=None,
                    lease_until=None,
                    next_attempt_at=None,
                )
            )
    return [
        Claimed(r[0], r[1], r[2], messages[r[0]], r[3], _aware(r[4]) or now)
        for r in sorted(rows, key=lambda r: r[0])
        if messages.get(r[0])
    ]


def renew_leases(engine: Engine, owner: str, lease_seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(_T)
            .where(_T.c.lease_owner == owner)
            .where(_T.c.status == "sending")
            .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
        )


def release(engine: Engine, ids: list[int], owner: str) -> None:
    """Give back rows claimed but never tried, as they were (no attempt counted)."""
    if not ids:
        return
    with engine.begin() as conn:
        conn.execute(
            update(_T)
            .where(_T.c.id.in_(ids))
            .where(_T.c.lease_owner == owner)
            .where(_T.c.status == "sending")
            .values(
                status=case((_T.c.attempts > 0, "retrying"), else_="pending"),
                lease_owner=None,
                lease_until=None,
            )
        )


def _aware(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


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


# One statement for every outcome, so a batch is one executemany whatever it holds.
# `sent_at` is given only for a delivery and `last_error` only for a failure; the
# COALESCE keeps what the row had otherwise.
_RESULT_SQL = text(
    f"UPDATE {_T.name} SET status = :status, smtp_reply = :reply,"
    " last_error = COALESCE(:error, last_error), sent_at = COALESCE(:sent_at, sent_at),"
    " next_attempt_at = :next_at, lease_owner = NULL, lease_until = NULL,"
    " attempts = attempts + 1"
    " WHERE id = :id AND lease_owner = :owner AND status = 'sending'"
)


@functools.lru_cache(maxsize=8)
def _result_sql(dialect: Any) -> tuple[str, tuple[str, ...] | None, Callable[[Any], Any]]:
    """The UPDATE in this driver's own SQL and parameter style, and how it takes a
    datetime: the batch then goes to the driver's executemany with no per-row work in
    SQLAlchemy (that work, on the database thread, took the GIL from the sends)."""
    compiled = _RESULT_SQL.compile(dialect=dialect)
    to_db = _T.c.sent_at.type.dialect_impl(dialect).bind_processor(dialect)
    return compiled.string, compiled.positiontup, to_db or (lambda value: value)


def record(
    engine: Engine, attempts: list[Attempt], owner: str, settings: Settings, rng: random.Random
) -> Recorded:
    """Write a batch of results in one transaction (one executemany).

    Only rows still leased to `owner` are written: if our lease was lost, whoever took
    the row over owns its result.
    """
    counts = Recorded()
    params: list[dict[str, Any]] = []
    bounces: Counter[int] = Counter()
    max_age = timedelta(hours=settings.retry_max_age_hours)
    sql, order, to_db = _result_sql(engine.dialect)
    for a in attempts:
        reply = a.result.reply[:500]
        row = {"id": a.row.id, "owner": owner, "reply": reply, "error": reply}
        row.update(sent_at=None, next_at=None)
        if a.result.ok:
            row.update(status="sent", error=None, sent_at=to_db(a.at))
            counts.sent += 1
        elif a.result.permanent:
            row["status"] = "bounced"
            bounces[a.row.subscriber_id] += 1
            counts.bounced += 1
        else:
            delay = timedelta(
                seconds=retry_delay(settings.retry_base_seconds, a.row.attempts + 1, rng)
            )
            if a.at + delay > a.row.age_from + max_age:
                gave_up = f"gave up after {a.row.attempts + 1} attempt(s): {reply}"[:500]
                row.update(status="failed", reply=gave_up, error=gave_up)
                counts.gave_up += 1
            else:
                row.update(status="retrying", next_at=to_db(a.at + delay))
                counts.retrying_ids.append(a.row.id)
        params.append(row)
    if order is not None:  # a positional parameter style (SQLite's qmark)
        params = [tuple(row[k] for k in order) for row in params]  # type: ignore[misc]
    with engine.begin() as conn:
        if params:
            conn.exec_driver_sql(sql, params)
        if bounces:
            counts.suspended = _count_bounces(conn, bounces, settings.max_bounces)
    return counts


def _count_bounces(conn: Any, bounces: Counter[int], max_bounces: int) -> int:
    """Add hard bounces to subscribers; suspend those that reached the limit."""
    conn.execute(
        update(_S)
        .where(_S.c.id == bindparam("b_id"))
        .values(bounces=_S.c.bounces + bindparam("b_n")),
        [{"b_id": sid, "b_n": n} for sid, n in bounces.items()],
    )
    return conn.execute(
        update(_S)
        .where(_S.c.id.in_(list(bounces)))
        .where(_S.c.bounces >= max_bounces)
        .where(_S.c.status == "active")
        .values(status="suspended")
    ).rowcount


def next_due_at(engine: Engine) -> datetime | None:
    """When the earliest waiting retry comes due (None: nothing waits)."""
    with engine.connect() as conn:
        value = conn.execute(
            select(func.min(_T.c.next_attempt_at)).where(_T.c.status.in_(DUE_STATUSES))
        ).scalar()
    return _aware(value)


def sent_in_last_hour(engine: Engine) -> int:
    since = utcnow() - timedelta(hours=1)
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(_T).where(_T.c.sent_at >= since)
        ).scalar_one()


def retry_failed(engine: Engine, edition: str | None = None) -> int:
    """`digest retry`: put failed digests back in the outbox with a fresh retry age."""
    now = utcnow()
    active = select(_S.c.id).where(_S.c.status == "active")
    stmt = (
        update(_T)
        .where(_T.c.status == "failed")
        .where(_T.c.subscriber_id.in_(active))
        # A digest that failed before it was rendered has nothing to send again.
        .where(exists().where(_M.c.digest_id == _T.c.id))
    )
    if edition:
        stmt = stmt.where(_T.c.edition == edition)
    with engine.begin() as conn:
        return conn.execute(
            stmt.values(
                status="retrying", next_attempt_at=now, retry_from=now, attempts=0, lease_until=None
            )
        ).rowcount


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
        self.limiter = RateLimiter(0, 0)
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
        self.limiter = RateLimiter(
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
