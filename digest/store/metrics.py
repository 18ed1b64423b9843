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

from sqlalchemy import Float, and_, case, cast, extract, func, or_, select
from sqlalchemy.engine import Connection, Engine

from digest.models import Digest, Paper, SourceState, Subscriber
from digest.states import DUE_STATUSES, DigestStatus
from digest.store.engine import table_of

_S = table_of(Subscriber)
_D = table_of(Digest)
_P = table_of(Paper)
_SRC = table_of(SourceState)


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
    digests: dict[str, int]
    due: int
    papers: int
    latency: LatencyBuckets
    sources: list[dict[str, Any]]


def _by(conn: Connection, column: Any) -> dict[str, int]:
    rows = conn.execute(select(column, func.count()).group_by(column)).all()
    return {str(k): int(n) for k, n in rows}


def _latency_seconds(conn: Connection) -> Any:
    """sent_at - created_at in seconds, in the dialect's own date arithmetic."""
    if conn.dialect.name == "postgresql":
        return extract("epoch", _D.c.sent_at - _D.c.created_at)
    return (func.julianday(_D.c.sent_at) - func.julianday(_D.c.created_at)) * 86400.0


def _latency(conn: Connection, bounds: Sequence[float], since_edition: str) -> LatencyBuckets:
    seconds = cast(_latency_seconds(conn), Float)
    columns = [func.sum(case((seconds <= b, 1), else_=0)) for b in bounds]
    row = conn.execute(
        select(func.count(), func.coalesce(func.sum(seconds), 0.0), *columns).where(
            and_(
                _D.c.edition >= since_edition,
                _D.c.status == DigestStatus.SENT,
                _D.c.sent_at.is_not(None),
            )
        )
    ).one()
    return LatencyBuckets(
        bounds, [int(n or 0) for n in row[2:]], int(row[0] or 0), float(row[1] or 0.0)
    )


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
        return MetricsSnapshot(
            subscribers=_by(conn, _S.c.status),
            subscriber_bounces=int(conn.execute(select(func.sum(_S.c.bounces))).scalar() or 0),
            digests=_by(conn, _D.c.status),
            due=int(due),
            papers=int(conn.execute(select(func.count()).select_from(_P)).scalar_one()),
            latency=_latency(conn, latency_bounds, since_edition),
            sources=sources,
        )
