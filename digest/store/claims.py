"""Claims: how N processes (on one machine or several, against one database) share
an edition so that each subscriber's digest is built by exactly one of them.

A claim is the subscriber's outbox row itself, inserted early in status `building`
with a lease (`lease_owner`, `lease_until`). The unique (subscriber, edition) row
makes it exactly-once: of two processes inserting the same row, one gets it and the
other's insert does nothing (`INSERT ... ON CONFLICT DO NOTHING`; on PostgreSQL the
second waits for the first to commit, then skips). Finishing a claim turns the row
into pending (or empty, or failed) with its message and advances the subscriber's
watermark, in one transaction, and only while the row is still leased to us. The
sender never claims a `building` row. A process killed mid-edition leaves rows in
`building`: another takes them over when their lease ends (at once when the owner
was a process on this machine that no longer exists).

Subscribers are read in keyset pages of small rows (`SubscriberRow`), never the
whole table as ORM objects.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, insert, literal_column, null, or_, select, update
from sqlalchemy.engine import Connection, Engine

from digest.models import Digest, DigestMessage, Subscriber, utcnow
from digest.states import DigestStatus, SubscriberStatus
from digest.store.engine import (
    DriverSql,
    contended_write,
    driver_sql,
    skipping_locked,
    table_of,
    upsert_insert,
)
from digest.store.outbox import leased, release_dead_leases

_T = table_of(Digest)
_S = table_of(Subscriber)
_M = table_of(DigestMessage)


@dataclass(slots=True)
class SubscriberRow:
    """What building a digest reads of a subscriber (a schedule and a profile row)."""

    id: int
    email: str
    keywords: str
    max_papers: int
    min_score: float | None
    timezone: str
    send_at: str
    frequency: str
    weekday: str | None
    notify_empty: bool
    last_paper_seq: int | None
    interest: str | None = None
    likes: list[str] = field(default_factory=list)
    token_version: int = 0  # feedback links carry it (a newer sign-up voids them)


_COLUMNS = (
    _S.c.id,
    _S.c.email,
    _S.c.keywords,
    _S.c.max_papers,
    _S.c.min_score,
    _S.c.timezone,
    _S.c.send_at,
    _S.c.frequency,
    _S.c.weekday,
    _S.c.notify_empty,
    _S.c.last_paper_seq,
    _S.c.interest,
    _S.c.likes,
    _S.c.token_version,
)


def active_page(engine: Engine, after_id: int, limit: int) -> list[SubscriberRow]:
    """The next `limit` active subscribers with an id above `after_id` (keyset
    pagination: each page is one indexed range read, whatever the table's size)."""
    stmt = (
        select(*_COLUMNS)
        .where(_S.c.id > after_id)
        .where(_S.c.status == SubscriberStatus.ACTIVE)
        .order_by(_S.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [SubscriberRow(*r) for r in conn.execute(stmt)]


def count_active(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(_S.c.status == SubscriberStatus.ACTIVE)
        ).scalar_one()


def subscriber_rows(engine: Engine, ids: Sequence[int]) -> dict[int, SubscriberRow]:
    """Subscribers by id (read again at build time: their watermark is the truth)."""
    out: dict[int, SubscriberRow] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 900):
            stmt = select(*_COLUMNS).where(_S.c.id.in_(list(ids[i : i + 900])))
            out.update((r[0], SubscriberRow(*r)) for r in conn.execute(stmt))
    return out


# ---------------------------------------------------------------- claiming


class Claim(NamedTuple):
    """One outbox row in `building`, leased to us: whose digest, which edition. A
    tuple: every chunk's claims are pickled to a build worker, twice as fast as a
    dataclass's."""

    digest_id: int
    subscriber_id: int
    edition: str


@functools.lru_cache(maxsize=8)
def _claim_sql(dialect: Any) -> tuple[DriverSql, Callable[[Any], Any]]:
    """The claim's INSERT ... ON CONFLICT DO NOTHING for the driver's executemany (an
    edition inserts one row per subscriber: SQLAlchemy's per-row work, a JSON dump of
    the same empty list and dict and a datetime bound three times, was most of its
    cost), and how this dialect takes a datetime. What every claimed row starts with
    is written into the statement; only the subscriber's fields and the lease vary."""
    stmt = (
        upsert_insert(_T, dialect.name)
        .values(
            subscriber_id=bindparam("subscriber_id"),
            edition=bindparam("edition"),
            recipient=bindparam("recipient"),
            status=literal_column(f"'{DigestStatus.BUILDING}'"),
            paper_ids=literal_column("'[]'"),
            explanations=literal_column("'{}'"),
            paper_seq_from=literal_column("0"),
            paper_seq_to=literal_column("0"),
            attempts=literal_column("0"),
            created_at=bindparam("created_at"),
            lease_owner=bindparam("lease_owner"),
            lease_until=bindparam("lease_until"),
        )
        .on_conflict_do_nothing(index_elements=["subscriber_id", "edition"])
    )
    to_db = _T.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    return driver_sql(stmt, dialect), to_db or (lambda value: value)


@contended_write
def claim(
    engine: Engine,
    wanted: Iterable[tuple[SubscriberRow, str]],
    owner: str,
    lease_seconds: float,
    now: datetime,
) -> list[Claim]:
    """Claim (subscriber, edition) pairs: insert their rows in `building`; those that
    already had a row (built earlier, or claimed by another process) are skipped.
    Returns the claims this call won, in subscriber order."""
    pairs = [(sub.id, edition, sub.email) for sub, edition in wanted]
    if not pairs:
        return []
    claim_sql, to_db = _claim_sql(engine.dialect)
    lease = {
        "created_at": to_db(now),
        "lease_owner": owner,
        "lease_until": to_db(utcnow() + timedelta(seconds=lease_seconds)),
    }
    rows = [
        {"subscriber_id": i, "edition": edition, "recipient": email, **lease}
        for i, edition, email in pairs
    ]
    editions = {(i, edition) for i, edition, _ in pairs}
    with engine.begin() as conn:
        conn.exec_driver_sql(claim_sql.sql, claim_sql.rows(rows))
        got = conn.execute(
            select(_T.c.id, _T.c.subscriber_id, _T.c.edition)
            .where(_T.c.subscriber_id.in_([i for i, _, _ in pairs]))
            .where(_T.c.status == DigestStatus.BUILDING)
            .where(_T.c.lease_owner == owner)
        ).all()
    return sorted(
        (Claim(i, s, e) for i, s, e in got if (s, e) in editions), key=lambda c: c.subscriber_id
    )


@contended_write
def take_over(
    engine: Engine, owner: str, limit: int, lease_seconds: float, me: str | None = None
) -> list[Claim]:
    """Claim up to `limit` rows another process left in `building`: its lease ran out,
    or (checked first) its owner was a process on this machine that no longer exists.
    The sub-select skips rows another process is taking over right now (PostgreSQL's
    SKIP LOCKED); the UPDATE checks again that each row is still free."""
    now = utcnow()
    release_dead_leases(engine, me or owner, DigestStatus.BUILDING)
    free = (_T.c.status == DigestStatus.BUILDING) & or_(
        _T.c.lease_until.is_(None), _T.c.lease_until < now
    )
    picked = skipping_locked(
        select(_T.c.id).where(free).order_by(_T.c.subscriber_id).limit(limit), engine
    )
    with engine.begin() as conn:
        got = conn.execute(
            update(_T)
            .where(_T.c.id.in_(picked.scalar_subquery()))
            .where(free)
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
            .returning(_T.c.id, _T.c.subscriber_id, _T.c.edition)
        ).all()
    return sorted((Claim(*r) for r in got), key=lambda c: c.subscriber_id)


@contended_write
def renew(engine: Engine, owner: str, lease_seconds: float) -> None:
    """Keep our `building` rows ours while their chunks are still being built (a
    chunk a worker is finishing right now is skipped: see `outbox.leased`)."""
    with engine.begin() as conn:
        conn.execute(
            update(_T)
            .where(leased(engine, owner, DigestStatus.BUILDING))
            .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
        )


def release(engine: Engine, owner: str) -> int:
    """Give up our claims still in `building` (our build workers broke): their leases
    end now, so the next run (or this process's next pass) takes them over at once,
    not when the lease would have run out. Returns how many."""
    with engine.begin() as conn:
        return conn.execute(
            update(_T)
            .where(_T.c.lease_owner == owner)
            .where(_T.c.status == DigestStatus.BUILDING)
            .values(lease_until=None)
        ).rowcount


def settled(engine: Engine, ids: Sequence[int]) -> list[tuple[str, bool]]:
    """(status, whether it holds papers) of the rows among `ids` no longer in
    `building`: a chunk whose build worker died after writing it (the pool broke
    before its report came back) still counts in what the run says it did."""
    out: list[tuple[str, bool]] = []
    with engine.connect() as conn:
        for i in range(0, len(ids), 900):
            rows = conn.execute(
                select(_T.c.status, _T.c.paper_ids)
                .where(_T.c.id.in_(ids[i : i + 900]))
                .where(_T.c.status != DigestStatus.BUILDING)
            )
            out.extend((str(status), bool(papers)) for status, papers in rows)
    return out


def count_building(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(_T.c.status == DigestStatus.BUILDING)
        ).scalar_one()


# ---------------------------------------------------------------- finishing


@dataclass(slots=True)
class Built:
    """A claimed digest, built: what its outbox row becomes. `explanations_json` is
    the explanations column's JSON text, made by the builder (`json.dumps` of the
    explanations dict, as the column itself would write it)."""

    digest_id: int
    subscriber_id: int
    status: str
    paper_seq_from: int
    paper_seq_to: int
    paper_ids: list[str]
    explanations_json: str
    message_id: str | None = None
    subject: str | None = None
    message: bytes | None = None
    last_error: str | None = None
    recipient: str = ""  # for the report's error lines (the claim stored the address)
    # The subscriber's watermark the digest was built from (None: no digest yet). It
    # is written only if the watermark is still that (see `finish`).
    watermark: int | None = None


_FINISH = (
    update(_T)
    .where(_T.c.id == bindparam("id"))
    .values(
        status=bindparam("status"),
        paper_seq_from=bindparam("paper_seq_from"),
        paper_seq_to=bindparam("paper_seq_to"),
        paper_ids=bindparam("paper_ids", type_=_T.c.paper_ids.type),
        explanations=bindparam("explanations", type_=_T.c.explanations.type),
        message_id=bindparam("message_id"),
        subject=bindparam("subject"),
        last_error=bindparam("last_error"),
        lease_owner=null(),
        lease_until=null(),
    )
)
_MESSAGE = insert(_M).values(digest_id=bindparam("digest_id"), message=bindparam("message"))


class Finished(NamedTuple):
    """What `finish` did: the rows it wrote, and the rows it left claimed because
    their subscriber's watermark moved since they were built (to build again)."""

    kept: set[int]
    stale: set[int]


@contended_write
def finish(engine: Engine, built: Sequence[Built], owner: str, now: datetime) -> Finished:
    """Turn claimed rows into what was built, with their messages and the advanced
    watermarks, in one transaction; only rows still leased to `owner` (a row taken
    over after our lease ran out belongs to whoever took it), and only digests built
    from their subscriber's watermark as it is now: two claims of one subscriber (a
    crashed day's, taken over, beside today's) built at once from one watermark would
    hold the same papers, so the one finished second is left to be built again."""
    if not built:
        return Finished(set(), set())
    with engine.begin() as conn:
        # The first statement writes, so SQLite takes its write lock here (no stale
        # read snapshot to upgrade later), and PostgreSQL locks the rows we keep.
        ours = set(
            conn.execute(
                update(_T)
                .where(_T.c.id.in_([b.digest_id for b in built]))
                .where(_T.c.lease_owner == owner)
                .where(_T.c.status == DigestStatus.BUILDING)
                .values(lease_owner=owner)
                .returning(_T.c.id)
            ).scalars()
        )
        fresh, stale = _fresh(conn, [b for b in built if b.digest_id in ours])
        if fresh:
            _write(conn, fresh, now)
    return Finished({b.digest_id for b in fresh}, stale)


def _fresh(conn: Connection, kept: list[Built]) -> tuple[list[Built], set[int]]:
    """The rows built from their subscriber's watermark as it is (read under the
    write lock; on PostgreSQL the subscribers' rows locked, in id order, until
    commit), oldest edition first; and the ids of the others."""
    ids = sorted({b.subscriber_id for b in kept})
    marks: dict[int, int | None] = {}
    for i in range(0, len(ids), 900):
        stmt = select(_S.c.id, _S.c.last_paper_seq).where(_S.c.id.in_(ids[i : i + 900]))
        if conn.dialect.name == "postgresql":
            stmt = stmt.order_by(_S.c.id).with_for_update()
        marks.update((sid, seq) for sid, seq in conn.execute(stmt))
    fresh: list[Built] = []
    stale: set[int] = set()
    for b in sorted(kept, key=lambda b: (b.subscriber_id, b.digest_id)):
        if b.subscriber_id in marks and marks[b.subscriber_id] != b.watermark:
            stale.add(b.digest_id)
            continue
        fresh.append(b)
        if b.status != DigestStatus.FAILED:  # a failed digest keeps the watermark
            marks[b.subscriber_id] = b.paper_seq_to
    return fresh, stale


def _write(conn: Connection, kept: list[Built], now: datetime) -> None:
    finish_sql = driver_sql(_FINISH, conn.dialect)
    conn.exec_driver_sql(
        finish_sql.sql,
        finish_sql.rows(
            [
                {
                    "id": b.digest_id,
                    "status": str(b.status),
                    "paper_seq_from": b.paper_seq_from,
                    "paper_seq_to": b.paper_seq_to,
                    "paper_ids": json.dumps(b.paper_ids),
                    "explanations": b.explanations_json,
                    "message_id": b.message_id,
                    "subject": b.subject,
                    "last_error": b.last_error,
                }
                for b in kept
            ]
        ),
    )
    messages = [{"digest_id": b.digest_id, "message": b.message} for b in kept if b.message]
    if messages:
        message_sql = driver_sql(_MESSAGE, conn.dialect)
        conn.exec_driver_sql(message_sql.sql, message_sql.rows(messages))
    # A failed digest keeps its subscriber's watermark, so their papers wait.
    by_top: dict[int, list[int]] = {}
    for b in kept:
        if b.status != DigestStatus.FAILED:
            by_top.setdefault(b.paper_seq_to, []).append(b.subscriber_id)
    for top, ids in by_top.items():
        conn.execute(update(_S).where(_S.c.id.in_(ids)).values(last_paper_seq=top))
    delivered = [
        b.subscriber_id for b in kept if b.status not in (DigestStatus.FAILED, DigestStatus.EMPTY)
    ]
    if delivered:
        conn.execute(update(_S).where(_S.c.id.in_(delivered)).values(last_digest_at=now))
