"""Counts for the Prometheus `/metrics` scrape, read from the database at scrape
time: digest runs as several processes (web, scheduler, cron `digest run`), so no
one process's memory holds the truth, while the database does.

Every figure is one aggregate statement (GROUP BY over an indexed column, SUM with
CASE for the latency buckets), never rows loaded into Python: a scrape stays cheap at
100,000 subscribers and millions of outbox rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Float, case, cast, extract, func, literal, or_, select, union_all
from sqlalchemy.engine import Connection, Engine

from digest.models import Digest, InboundEvent, Paper, SourceState, Subscriber
from digest.states import DUE_STATUSES, DigestStatus
from digest.store.engine import table_of
from digest.store.tallies import DIGEST_TALLY, INBOUND_TALLY

_S = table_of(Subscriber)
_D = table_of(Digest)
_P = table_of(Paper)
_SRC = table_of(SourceState)
_IN = table_of(InboundEvent)


@dataclass
class LatencyBuckets:
    """Cumulative counts per upper bound (seconds), as a Prometheus histogram has them."""

    bounds: Sequence[float]
    counts: list[int] = field(default_factory=list)  # one per bound, cumulative
    count: int = 0
    total: float = 0.0


@dataclass
class MetricsSnapshot:
    subscribers: dict[str, int]
    subscriber_bounces: int
    subscriber_complaints: int
    inbound: dict[str, int]  # messages `digest inbound` read, by what it made of them
    digests: dict[str, int]  # outbox rows stored, by status
    digests_sent: int  # ever sent: the rows stored plus those deleted (`digesttally`)
    due: int
    papers: int
    latency: LatencyBuckets
    sources: list[dict[str, Any]]


def _by(conn: Connection, column: Any) -> dict[str, int]:
    rows = conn.execute(select(column, func.count()).group_by(column)).all()
    return {str(k): int(n) for k, n in rows}


def _inbound(conn: Connection) -> dict[str, int]:
    """Inbound messages by kind: the events stored plus those pruned (`inboundtally`),
    in one statement, so a prune between two reads can neither hide nor double them."""
    both = union_all(
        select(_IN.c.kind.label("kind"), func.count().label("n")).group_by(_IN.c.kind),
        select(INBOUND_TALLY.c.kind.label("kind"), INBOUND_TALLY.c.count.label("n")),
    ).subquery()
    rows = conn.execute(select(both.c.kind, func.sum(both.c.n)).group_by(both.c.kind)).all()
    return {str(k): int(n) for k, n in rows}


def _digests(conn: Connection) -> tuple[dict[str, int], int]:
    """(outbox rows by status, digests ever sent): the rows and the tally of deleted
    ones read in one statement, so a subscriber deleted between two reads can
    neither hide their sent digests nor count them twice."""
    rows = select(literal("rows").label("src"), _D.c.status, func.count().label("n")).group_by(
        _D.c.status
    )
    tally = select(literal("tally"), DIGEST_TALLY.c.status, DIGEST_TALLY.c.count)
    by_status: dict[str, int] = {}
    sent = 0
    for src, status, n in conn.execute(union_all(rows, tally)):
        if src == "rows":
            by_status[str(status)] = int(n)
        if status == DigestStatus.SENT:
            sent += int(n)
    return by_status, sent


def _latency_seconds(conn: Connection) -> Any:
    """sent_at - created_at in seconds, in the dialect's own date arithmetic."""
    if conn.dialect.name == "postgresql":
        return extract("epoch", _D.c.sent_at - _D.c.created_at)
    return (func.julianday(_D.c.sent_at) - func.julianday(_D.c.created_at)) * 86400.0


def _latency(conn: Connection, bounds: Sequence[float], since_edition: str) -> LatencyBuckets:
    """The histogram in one pass: each row's latency computed once (a materialized
    CTE: else SQLite would parse both timestamps again for every bucket)."""
    sent = (
        select(cast(_latency_seconds(conn), Float).label("s"))
        .where(
            _D.c.edition >= since_edition,
            _D.c.status == DigestStatus.SENT,
            _D.c.sent_at.is_not(None),
        )
        .cte("sent")
        .prefix_with("MATERIALIZED")
    )
    seconds = sent.c.s
    # Each row's bucket: the first bound it is within (len(bounds): above them all).
    slot = case(*((seconds <= b, i) for i, b in enumerate(bounds)), else_=len(bounds))
    per_slot = [0] * (len(bounds) + 1)
    count, total = 0, 0.0
    for index, n, subtotal in conn.execute(
        select(slot, func.count(), func.sum(seconds)).select_from(sent).group_by(slot)
    ):
        per_slot[int(index)] = int(n)
        count += int(n)
        total += float(subtotal or 0.0)
    cumulative = [sum(per_slot[: i + 1]) for i in range(len(bounds))]
    return LatencyBuckets(bounds, cumulative, count, total)


def metrics_snapshot(
    engine: Engine, now: datetime, latency_bounds: Sequence[float], since_edition: str
) -> MetricsSnapshot:
    """Everything `/metrics` shows, in one read transaction. The send latency covers
    the digests of editions from `since_edition` on (the recent ones: an index range,
    not the whole outbox)."""
    with engine.connect() as conn:
        due = conn.execute(
            select(func.count()).where(
                _D.c.status.in_(DUE_STATUSES),
                or_(_D.c.next_attempt_at.is_(None), _D.c.next_attempt_at <= now),
            )
        ).scalar_one()
        sources = [
            dict(r)
            for r in conn.execute(
                select(_SRC.c.name, _SRC.c.last_fetch_at, _SRC.c.last_status, _SRC.c.last_counts)
            ).mappings()
        ]
        digests, sent = _digests(conn)
        return MetricsSnapshot(
            subscribers=_by(conn, _S.c.status),
            subscriber_bounces=int(conn.execute(select(func.sum(_S.c.bounces))).scalar() or 0),
            subscriber_complaints=int(
                conn.execute(select(func.sum(_S.c.complaints))).scalar() or 0
            ),
            inbound=_inbound(conn),
            digests=digests,
            digests_sent=sent,
            due=int(due),
            papers=int(conn.execute(select(func.count()).select_from(_P)).scalar_one()),
            latency=_latency(conn, latency_bounds, since_edition),
            sources=sources,
        )
