"""Retention: what `digest prune` deletes, so the database stops growing by every
edition's mail.

The rendered MIME bytes of a digest (`digestmessage`, tens of kB each) are needed
only until the digest is settled: sent, bounced, failed or empty (`FINISHED_STATUSES`).
After `keep_messages_days` they are deleted; the digest row itself is kept, since it
holds the watermark history, the papers and explanations the view page re-renders
from, and what `digest status` counts. A digest that may still go out (pending,
retrying, sending, building) keeps its message whatever its age.

Inbound events (`digest inbound`'s audit trail) are deleted after `keep_events_days`
when the operator asks for it (0, the default, keeps them). The `/metrics` counter of
inbound messages counts these rows plus `inboundtally`, the running totals by kind
of the rows pruned, added in the transaction that deletes them: it never drops.

Deletes run in bounded batches, one short transaction each, so a first prune of a
large database never holds SQLite's write lock (or many PostgreSQL row locks) for
long: senders and the web app get in between batches.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.engine import Connection, Engine

from digest.models import Digest, DigestMessage, InboundEvent, utcnow
from digest.states import FINISHED_STATUSES
from digest.store.engine import table_of
from digest.store.tallies import tally_deleted_events

_T = table_of(Digest)
_M = table_of(DigestMessage)
_E = table_of(InboundEvent)

# Rows per transaction: ~500 messages are ~30 MB at today's ~67 kB a digest, a
# fraction of a second of writing; the next batch waits behind any other writer.
DEFAULT_BATCH = 500


@dataclass
class PruneReport:
    """What one prune deleted (or, dry, would delete)."""

    dry_run: bool
    messages_before: datetime | None  # None: messages are kept forever
    events_before: datetime | None  # None: events are kept forever
    messages: int = 0
    message_bytes: int = 0
    events: int = 0
    batches: int = 0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("messages_before", "events_before"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


def cutoff(days: int, now: datetime) -> datetime | None:
    """The moment before which rows are old after `days` days; None for 0 (keep)."""
    return now - timedelta(days=days) if days > 0 else None


def _settled_before(before: datetime) -> Any:
    """A finished digest nothing has touched since `before`: built, pushed back by
    `digest retry` (retry_from) and sent all before it."""
    return and_(
        _T.c.status.in_(FINISHED_STATUSES),
        _T.c.created_at < before,
        or_(_T.c.retry_from.is_(None), _T.c.retry_from < before),
        or_(_T.c.sent_at.is_(None), _T.c.sent_at < before),
    )


def _next_message_id(conn: Connection, at_least: int) -> int | None:
    """The smallest digest id >= `at_least` that still has a message (one index
    probe): the walk below skips the pruned history and any gap at once."""
    found = conn.execute(
        select(func.min(_M.c.digest_id)).where(_M.c.digest_id >= at_least)
    ).scalar()
    return None if found is None else int(found)


def _window_has_old(conn: Connection, lo: int, hi: int, before: datetime) -> bool:
    return bool(
        conn.execute(
            select(func.count()).where(_T.c.id >= lo, _T.c.id < hi, _T.c.created_at < before)
        ).scalar_one()
    )


def _settled_ids(lo: int, hi: int, before: datetime) -> Any:
    return select(_T.c.id).where(_T.c.id >= lo, _T.c.id < hi).where(_settled_before(before))


def _delete_window(conn: Connection, lo: int, hi: int, before: datetime) -> tuple[int, int]:
    """Delete the prunable messages of digests lo <= id < hi; (how many, bytes). The
    status is read in the same statement, so a digest `digest retry` pushed back
    meanwhile keeps its email."""
    deleted = conn.execute(
        delete(_M)
        .where(_M.c.digest_id.in_(_settled_ids(lo, hi, before)))
        .returning(func.length(_M.c.message))
    ).scalars()
    sizes = [int(n or 0) for n in deleted]
    return len(sizes), sum(sizes)


def _count_window(conn: Connection, lo: int, hi: int, before: datetime) -> tuple[int, int]:
    """What `_delete_window` would delete (a dry run)."""
    n, size = conn.execute(
        select(func.count(), func.coalesce(func.sum(func.length(_M.c.message)), 0)).where(
            _M.c.digest_id.in_(_settled_ids(lo, hi, before))
        )
    ).one()
    return int(n), int(size)


def prune_messages(
    engine: Engine,
    before: datetime,
    report: PruneReport,
    batch: int = DEFAULT_BATCH,
    stop: threading.Event | None = None,
) -> None:
    """Delete (or, in a dry run, count) the stored messages of finished digests
    settled before `before`: a window of `batch` digest ids per transaction, from the
    oldest stored message up to the first window whose digests are all newer than
    `before` (ids grow with time). Each window reads digest rows by primary key
    and probes messages by primary key: the cost follows the messages stored, never
    the whole history, and no large message row is read to be skipped."""
    act = _count_window if report.dry_run else _delete_window
    at_least = 0
    while stop is None or not stop.is_set():
        with engine.begin() as conn:
            lo = _next_message_id(conn, at_least)
            if lo is None or not _window_has_old(conn, lo, lo + batch, before):
                return
            n, size = act(conn, lo, lo + batch, before)
        report.batches += 1
        report.messages += n
        report.message_bytes += size
        at_least = lo + batch


def prune_events(
    engine: Engine,
    before: datetime,
    report: PruneReport,
    batch: int = DEFAULT_BATCH * 10,
    stop: threading.Event | None = None,
) -> None:
    """Delete inbound events older than `before`, oldest first, a batch per
    transaction."""
    while stop is None or not stop.is_set():
        oldest = (
            select(_E.c.id).where(_E.c.created_at < before).order_by(_E.c.id).limit(batch)
        ).scalar_subquery()
        with engine.begin() as conn:
            # The kinds of the rows this transaction deleted (another prune running
            # at once deletes others, or none): each is tallied exactly once.
            kinds = conn.execute(delete(_E).where(_E.c.id.in_(oldest)).returning(_E.c.kind))
            n = tally_deleted_events(conn, Counter(kinds.scalars()))
        if n:
            report.batches += 1
            report.events += n
        if n < batch:
            return


def _count_events(engine: Engine, report: PruneReport) -> None:
    """A dry run: the inbound events a prune would delete now."""
    if report.events_before is None:
        return
    with engine.connect() as conn:
        report.events = int(
            conn.execute(
                select(func.count()).where(_E.c.created_at < report.events_before)
            ).scalar_one()
        )


def prune(
    engine: Engine,
    keep_messages_days: int,
    keep_events_days: int,
    *,
    dry_run: bool = False,
    batch: int = DEFAULT_BATCH,
    now: datetime | None = None,
    stop: threading.Event | None = None,
) -> PruneReport:
    """`digest prune` and the scheduler's daily job: delete the messages of finished
    digests older than `keep_messages_days` and inbound events older than
    `keep_events_days` (0 keeps them). `stop` ends it between two batches."""
    now = now or utcnow()
    report = PruneReport(dry_run, cutoff(keep_messages_days, now), cutoff(keep_events_days, now))
    if report.messages_before is not None:
        prune_messages(engine, report.messages_before, report, batch, stop)
    if dry_run:
        _count_events(engine, report)
    elif report.events_before is not None:
        prune_events(engine, report.events_before, report, batch * 10, stop)
    return report
