"""The outbox queue: digests are rows written before any is sent; senders claim due
rows with a lease and record what the server said. Every statement of it lives here;
the async sender (`digest.delivery.sender`) calls these functions from its one
database thread.

Guarantees, and what gives them:
- Never twice: the unique (subscriber, edition) row is the only thing that is sent,
  and a row leaves the due states (pending, retrying) only by being claimed. A claim
  is one UPDATE ... RETURNING that takes only unleased rows, so two senders (a cron
  `digest run` beside `digest serve`) never hold the same row.
- Never lost: a row whose sender died stays `sending` with a lease; it is claimed
  again when the lease runs out, or at once when the owner was a process on this
  machine that no longer exists.
- Fast: claims and results rewrite small rows (the message bytes live in their own
  table and are read once per claimed batch); a batch of results is one executemany
  of one raw statement, with no per-row work in SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, text, update
from sqlalchemy.engine import Engine

from digest.models import Digest, DigestMessage, Subscriber, utcnow
from digest.states import DUE_STATUSES, DigestStatus, SubscriberStatus
from digest.store.engine import (
    DriverSql,
    contended_write,
    driver_sql,
    skipping_locked,
    table_of,
)

NO_MESSAGE = "not sent: no rendered message is stored for this digest"
NO_LONGER_ACTIVE = "not sent: the subscriber is no longer active"

_T = table_of(Digest)
_S = table_of(Subscriber)
_M = table_of(DigestMessage)


@dataclass
class Claimed:
    """A leased row: what sending and recording it need, nothing more."""

    id: int
    subscriber_id: int
    recipient: str
    message: bytes
    attempts: int
    age_from: datetime
    # When (time.monotonic()) the sender last saw its subscriber active; 0: never.
    checked_at: float = 0.0


class Outcome(NamedTuple):
    """What to write for one attempt: the row's new status, the server's reply, the
    error to keep (None keeps the old one), and when it was sent or is due again."""

    id: int
    status: str
    reply: str
    error: str | None
    sent_at: datetime | None
    next_at: datetime | None


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


def release_dead_leases(engine: Engine, me: str, status: str = DigestStatus.SENDING) -> int:
    """Make rows in `status` (sending; or building, for claims) held by a dead process
    on this machine claimable now."""
    now = utcnow()
    with engine.begin() as conn:
        owners = conn.execute(
            select(_T.c.lease_owner)
            .where(_T.c.status == status)
            .where(_T.c.lease_until >= now)
            .distinct()
        ).scalars()
        dead = [o for o in owners if o and _owner_is_dead(o, me)]
        if not dead:
            return 0
        return conn.execute(
            update(_T)
            .where(_T.c.status == status)
            .where(_T.c.lease_owner.in_(dead))
            .values(lease_until=None)
        ).rowcount


def cancel_for_inactive(engine: Engine) -> int:
    """Digests queued for someone no longer active (unsubscribed, paused, suspended,
    signed up again and not confirmed yet): not sent."""
    inactive = select(_S.c.id).where(_S.c.status != SubscriberStatus.ACTIVE)
    with engine.begin() as conn:
        return conn.execute(
            update(_T)
            .where(_T.c.status.in_(DUE_STATUSES))
            .where(_T.c.subscriber_id.in_(inactive))
            .values(
                status=DigestStatus.FAILED,
                last_error=NO_LONGER_ACTIVE,
            )
        ).rowcount


def _due(now: datetime) -> Any:
    return and_(
        _T.c.status.in_(DUE_STATUSES),
        or_(_T.c.next_attempt_at.is_(None), _T.c.next_attempt_at <= now),
    )


def _orphaned(now: datetime) -> Any:
    """A `sending` row without a live lease: its sender died before recording it."""
    return and_(
        _T.c.status == DigestStatus.SENDING, or_(_T.c.lease_until.is_(None), _T.c.lease_until < now)
    )


@contended_write
def claim(engine: Engine, limit: int, owner: str, lease_seconds: float) -> list[Claimed]:
    """Lease up to `limit` due rows to `owner` and return them.

    One UPDATE per kind (due, then orphaned) takes the ids an indexed sub-select picks
    (so it stops after `limit` rows, whatever the size of the outbox), checking again
    that each row is free: of two senders racing for a row, one gets it.
    """
    now = utcnow()
    lease = {
        "status": DigestStatus.SENDING,
        "lease_owner": owner,
        "lease_until": now + timedelta(seconds=lease_seconds),
    }
    rows: list[Any] = []
    with engine.begin() as conn:
        for free in (_due(now), _orphaned(now)):
            want = limit - len(rows)
            if want <= 0:
                break
            picked = skipping_locked(select(_T.c.id).where(free).limit(want), engine)
            rows += conn.execute(
                update(_T)
                .where(_T.c.id.in_(picked.scalar_subquery()))
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
            _fail(conn, unsendable, NO_MESSAGE)
    # Whether each subscriber is still active is checked right before the send
    # (`not_to_send`), not here: a claimed row may wait a while for its turn.
    return [
        Claimed(r[0], r[1], r[2], messages[r[0]], r[3], _aware(r[4]) or now)
        for r in sorted(rows, key=lambda r: r[0])
        if messages.get(r[0])
    ]


def not_to_send(engine: Engine, rows: Sequence[tuple[int, int]], owner: str) -> dict[int, str]:
    """Of claimed rows, (row id, subscriber id) leased to `owner`, those that must not
    be sent now: their subscriber unsubscribed, paused, was suspended or deleted since
    the row was queued (the sender asks right before sending a batch, so an unsubscribe
    made while the row waited its turn is honoured; RFC 8058 one-click). Such rows
    become failed with why (`digest status` lists them); a deleted subscriber's rows
    are gone with them. Returns {row id: why}. One read when all is well."""
    if not rows:
        return {}
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                select(_S.c.id, _S.c.status).where(_S.c.id.in_({sid for _, sid in rows}))
            ).all()
        )
    why = {
        rid: f"{NO_LONGER_ACTIVE} ({statuses.get(sid) or 'deleted'})"
        for rid, sid in rows
        if statuses.get(sid) != SubscriberStatus.ACTIVE
    }
    if why:
        with engine.begin() as conn:
            for reason in set(why.values()):
                ids = [rid for rid, r in why.items() if r == reason]
                _fail(conn, ids, reason, owner)
    return why


def _fail(conn: Any, ids: list[int], why: str, owner: str | None = None) -> None:
    """Claimed rows that must not be sent: failed, visibly, with why (only those still
    leased to `owner`, when given: a row taken over belongs to whoever took it)."""
    stmt = update(_T).where(_T.c.id.in_(ids))
    if owner is not None:
        stmt = stmt.where(_T.c.lease_owner == owner).where(_T.c.status == DigestStatus.SENDING)
    conn.execute(
        stmt.values(
            status=DigestStatus.FAILED,
            last_error=why,
            lease_owner=None,
            lease_until=None,
            next_attempt_at=None,
        )
    )


def leased(engine: Engine, owner: str, status: str) -> Any:
    """The rows leased to `owner` in `status`, as a WHERE clause for an UPDATE that
    renews them. On PostgreSQL it skips the rows another transaction holds (ours:
    a chunk being finished, results being recorded): they are about to change anyway,
    and waiting for them while holding the others' locks is how two transactions
    deadlock (they lock in different orders)."""
    mine = (_T.c.lease_owner == owner) & (_T.c.status == status)
    if engine.dialect.name != "postgresql":
        return mine
    picked = skipping_locked(select(_T.c.id).where(mine), engine)
    return _T.c.id.in_(picked.scalar_subquery()) & mine


@contended_write
def renew_leases(engine: Engine, owner: str, lease_seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(_T)
            .where(leased(engine, owner, DigestStatus.SENDING))
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
            .where(_T.c.status == DigestStatus.SENDING)
            .values(
                status=case((_T.c.attempts > 0, DigestStatus.RETRYING), else_=DigestStatus.PENDING),
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


# One statement for every outcome, so a batch is one executemany whatever it holds.
# `sent_at` is given only for a delivery and `last_error` only for a failure; the
# COALESCE keeps what the row had otherwise.
_RESULT_SQL = text(
    f"UPDATE {_T.name} SET status = :status, smtp_reply = :reply,"
    " last_error = COALESCE(:error, last_error), sent_at = COALESCE(:sent_at, sent_at),"
    " next_attempt_at = :next_at, lease_owner = NULL, lease_until = NULL,"
    " attempts = attempts + 1"
    f" WHERE id = :id AND lease_owner = :owner AND status = '{DigestStatus.SENDING}'"
)


@functools.lru_cache(maxsize=8)
def _result_sql(dialect: Any) -> tuple[DriverSql, Callable[[Any], Any]]:
    """The UPDATE for the driver's executemany (`driver_sql`: that per-row work in
    SQLAlchemy, on the database thread, took the GIL from the sends) and how this
    dialect takes a datetime."""
    to_db = _T.c.sent_at.type.dialect_impl(dialect).bind_processor(dialect)
    return driver_sql(_RESULT_SQL, dialect), to_db or (lambda value: value)


@contended_write
def record(
    engine: Engine,
    outcomes: Sequence[Outcome],
    owner: str,
    bounces: Counter[int],
    max_bounces: int,
) -> int:
    """Write a batch of results in one transaction (one executemany), add hard bounces
    to their subscribers, and return how many subscribers that suspended.

    Only rows still leased to `owner` are written: if our lease was lost, whoever took
    the row over owns its result.
    """
    result_sql, to_db = _result_sql(engine.dialect)
    params: list[Any] = [
        {
            "id": o.id,
            "owner": owner,
            "status": o.status,
            "reply": o.reply,
            "error": o.error,
            "sent_at": None if o.sent_at is None else to_db(o.sent_at),
            "next_at": None if o.next_at is None else to_db(o.next_at),
        }
        for o in sorted(outcomes, key=lambda o: o.id)  # rows locked in one order, always
    ]
    suspended = 0
    with engine.begin() as conn:
        if params:
            conn.exec_driver_sql(result_sql.sql, result_sql.rows(params))
        if bounces:
            suspended = _count_bounces(conn, bounces, max_bounces)
    return suspended


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
        .where(_S.c.status == SubscriberStatus.ACTIVE)
        .values(status=SubscriberStatus.SUSPENDED)
    ).rowcount


def next_due_at(engine: Engine) -> datetime | None:
    """When the earliest waiting retry comes due (None: nothing waits)."""
    with engine.connect() as conn:
        value = conn.execute(
            select(func.min(_T.c.next_attempt_at)).where(_T.c.status.in_(DUE_STATUSES))
        ).scalar()
    return _aware(value)


def count_due(engine: Engine, by: datetime | None = None) -> int:
    """How many digests wait to be sent: due by `by`, or at any time (None)."""
    stmt = select(func.count()).select_from(_T).where(_T.c.status.in_(DUE_STATUSES))
    if by is not None:
        stmt = stmt.where(or_(_T.c.next_attempt_at.is_(None), _T.c.next_attempt_at <= by))
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


def sent_in_last_hour(engine: Engine) -> int:
    since = utcnow() - timedelta(hours=1)
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(_T).where(_T.c.sent_at >= since)
        ).scalar_one()


def retry_failed(engine: Engine, edition: str | None = None) -> int:
    """`digest retry`: put failed digests back in the outbox with a fresh retry age,
    and make retries waiting for their time due now (the operator says: try now).
    Returns how many digests are due now because of it."""
    now = utcnow()
    waiting = (
        update(_T)
        .where(_T.c.status == DigestStatus.RETRYING)
        .where(_T.c.next_attempt_at > now)
        .values(next_attempt_at=now)
    )
    if edition:
        waiting = waiting.where(_T.c.edition == edition)
    active = select(_S.c.id).where(_S.c.status == SubscriberStatus.ACTIVE)
    stmt = (
        update(_T)
        .where(_T.c.status == DigestStatus.FAILED)
        .where(_T.c.subscriber_id.in_(active))
        # A digest that failed before it was rendered has nothing to send again.
        .where(exists().where(_M.c.digest_id == _T.c.id))
    )
    if edition:
        stmt = stmt.where(_T.c.edition == edition)
    with engine.begin() as conn:
        pushed = conn.execute(
            stmt.values(
                status=DigestStatus.RETRYING,
                next_attempt_at=now,
                retry_from=now,
                attempts=0,
                lease_until=None,
            )
        ).rowcount
        return pushed + conn.execute(waiting).rowcount
