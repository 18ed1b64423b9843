"""Retention: what `digest prune` deletes, so the database stops growing by every
edition's mail.

The rendered MIME bytes of a digest (`digestmessage`, tens of kB each) are needed
only until the digest is settled: sent, bounced, failed or empty (`FINISHED_STATUSES`).
After `keep_messages_days` they are deleted; the digest row itself is kept, since it
holds the watermark history, the papers and explanations the view page re-renders
from, and what `digest status` counts. A digest that may still go out (pending,
retrying, sending, building) keeps its message whatever its age.

Inbound events (`digest inbound`'s audit trail) are deleted after `keep_events_days`
when the operator asks for it (0, the default, keeps them: the `/metrics` counter of
inbound messages counts these rows, and would drop).

Deletes run in bounded batches, one short transaction each, so a first prune of a
large database never holds SQLite's write lock (or many PostgreSQL row locks) for
long: senders and the web app get in between batches.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.engine import Connection, Engine

from digest.models import Digest, DigestMessage, InboundEvent, utcnow
from digest.states import FINISHED_STATUSES
from digest.store.engine import table_of

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


def _old_messages(before: datetime) -> Any:
    """SELECT digest id, message size of each prunable message, in id order."""
    return (
        select(_M.c.digest_id, func.length(_M.c.message).label("size"))
        .select_from(_M.join(_T, _T.c.id == _M.c.digest_id))
        .where(_settled_before(before))
        .order_by(_M.c.digest_id)
    )


def _delete_messages(conn: Connection, ids: Sequence[int], before: datetime) -> list[int]:
    """Delete the messages of `ids` that are still prunable (the status is checked
    again in the same statement: a digest `digest retry` pushed back meanwhile keeps
    its message). Returns the ids deleted."""
    still = select(_T.c.id).where(_T.c.id.in_(ids)).where(_settled_before(before))
    return list(
        conn.execute(
            delete(_M).where(_M.c.digest_id.in_(still)).returning(_M.c.digest_id)
        ).scalars()
    )


def prune_messages(
    engine: Engine,
    before: datetime,
    report: PruneReport,
    batch: int = DEFAULT_BATCH,
    stop: threading.Event | None = None,
) -> None:
    """Delete the stored messages of finished digests settled before `before`, a
    batch per transaction, walking the message table once in id order (keyset: the
    rows a batch leaves, ones still due, are not read again)."""
    after = 0
    while stop is None or not stop.is_set():
        with engine.begin() as conn:
            rows = conn.execute(
                _old_messages(before).where(_M.c.digest_id > after).limit(batch)
            ).all()
            if not rows:
                return
            sizes = {int(r[0]): int(r[1] or 0) for r in rows}
            deleted = _delete_messages(conn, list(sizes), before)
        report.batches += 1
        report.messages += len(deleted)
        report.message_bytes += sum(sizes[i] for i in deleted)
        after = max(sizes)
        if len(rows) < batch:
            return


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
            n = conn.execute(delete(_E).where(_E.c.id.in_(oldest))).rowcount
        if n:
            report.batches += 1
            report.events += n
        if n < batch:
            return


def _count_prunable(engine: Engine, report: PruneReport) -> None:
    """A dry run: what a prune would delete now, in one read of aggregates."""
    with engine.connect() as conn:
        if report.messages_before is not None:
            old = _old_messages(report.messages_before).order_by(None).subquery()
            n, size = conn.execute(
                select(func.count(), func.coalesce(func.sum(old.c.size), 0)).select_from(old)
            ).one()
            report.messages, report.message_bytes = int(n), int(size)
        if report.events_before is not None:
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
    if dry_run:
        _count_prunable(engine, report)
        return report
    if report.messages_before is not None:
        prune_messages(engine, report.messages_before, report, batch, stop)
    if report.events_before is not None:
        prune_events(engine, report.events_before, report, batch * 10, stop)
    return report
