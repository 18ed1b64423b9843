"""What `digest inbound` writes: a mailed unsubscribe, a late bounce, a complaint, and
one `InboundEvent` row per message (the audit trail, and the counts for metrics).

Each message is one transaction: the subscriber's change and its event row are
written together or not at all, so a retried delivery (the MTA got exit 75) never
counts a bounce twice and never loses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from digest.models import InboundEvent, Subscriber, utcnow
from digest.states import InboundKind, SubscriberStatus
from digest.store.engine import table_of

_S = table_of(Subscriber)
_E = table_of(InboundEvent)
# Statuses an unsubscribe or complaint moves to unsubscribed (pending: never confirmed,
# but the address asked us to stop all the same).
_STOPPABLE = (
    SubscriberStatus.PENDING,
    SubscriberStatus.ACTIVE,
    SubscriberStatus.PAUSED,
    SubscriberStatus.SUSPENDED,
)

# An inbound bounce counts once in this long per subscriber: digests go out at most
# daily, so a second one sooner is the same bounce again (replayed, delivered twice,
# or forged from the bounce address a forwarded digest shows).
BOUNCE_WINDOW = timedelta(hours=20)
NOT_COUNTED = "; not counted: a bounce was counted in the last 20 hours"


@dataclass(frozen=True)
class InboundChange:
    """What one inbound message changed on its subscriber."""

    subscriber_id: int | None
    email: str | None  # None: no such row (deleted since, or never existed)
    status_before: str | None
    status_after: str | None
    bounces: int | None
    complaints: int | None
    counted: bool = True  # False: a bounce within BOUNCE_WINDOW of another, not counted


def apply_inbound(
    engine: Engine,
    kind: InboundKind,
    subscriber_id: int | None,
    detail: str,
    max_bounces: int,
) -> InboundChange:
    """Record one inbound message and do what its kind asks to `subscriber_id`:
    BOUNCE adds a bounce (suspended at `max_bounces`, as SMTP-time bounces are),
    COMPLAINT adds a complaint and unsubscribes, UNSUBSCRIBE unsubscribes; the other
    kinds only leave their event row. An id with no row changes nothing (and is
    logged as given)."""
    now = utcnow()
    with engine.begin() as conn:
        row = None
        if subscriber_id is not None:
            row = conn.execute(
                select(_S.c.id, _S.c.email, _S.c.status).where(_S.c.id == subscriber_id)
            ).first()
        before = row.status if row is not None else None
        counted = True
        if row is not None:
            where = _S.c.id == subscriber_id
            if kind == InboundKind.BOUNCE:
                counted = _first_bounce_since(conn, row.id, now - BOUNCE_WINDOW)
            if kind == InboundKind.BOUNCE and counted:
                conn.execute(update(_S).where(where).values(bounces=_S.c.bounces + 1))
                conn.execute(
                    update(_S)
                    .where(where)
                    .where(_S.c.bounces >= max_bounces)
                    .where(_S.c.status == SubscriberStatus.ACTIVE)
                    .values(status=SubscriberStatus.SUSPENDED)
                )
            if kind == InboundKind.COMPLAINT:
                conn.execute(update(_S).where(where).values(complaints=_S.c.complaints + 1))
            if kind in (InboundKind.COMPLAINT, InboundKind.UNSUBSCRIBE):
                conn.execute(
                    update(_S)
                    .where(where)
                    .where(_S.c.status.in_(_STOPPABLE))
                    .values(status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=now)
                )
        conn.execute(
            insert(_E).values(
                kind=str(kind),
                subscriber_id=subscriber_id if row is not None else None,
                created_at=now,
                detail=(detail[: 500 - len(NOT_COUNTED)] + NOT_COUNTED if not counted else detail)[
                    :500
                ],
            )
        )
        after = None
        if row is not None:
            after = conn.execute(
                select(_S.c.status, _S.c.bounces, _S.c.complaints).where(_S.c.id == subscriber_id)
            ).first()
    return InboundChange(
        subscriber_id=subscriber_id if row is not None else None,
        email=row.email if row is not None else None,
        status_before=before,
        status_after=after.status if after is not None else None,
        bounces=after.bounces if after is not None else None,
        complaints=after.complaints if after is not None else None,
        counted=counted,
    )


def _first_bounce_since(conn: Connection, subscriber_id: int, since: datetime) -> bool:
    """Whether no bounce event names this subscriber since `since`."""
    found = conn.execute(
        select(_E.c.id)
        .where(_E.c.subscriber_id == subscriber_id)
        .where(_E.c.kind == str(InboundKind.BOUNCE))
        .where(_E.c.created_at >= since)
        .limit(1)
    ).first()
    return found is None


def inbound_counts(engine: Engine, since: datetime | None = None) -> dict[str, int]:
    """How many inbound messages of each `InboundKind` were read (since `since`):
    every kind present, zeros included, for metrics counters."""
    stmt = select(_E.c.kind, func.count()).group_by(_E.c.kind)
    if since is not None:
        stmt = stmt.where(_E.c.created_at >= since)
    with engine.connect() as conn:
        found = {kind: int(n) for kind, n in conn.execute(stmt)}
    return {str(kind): found.get(str(kind), 0) for kind in InboundKind}


def list_inbound_events(engine: Engine, limit: int = 100) -> list[InboundEvent]:
    """The newest `limit` events, newest first."""
    stmt = select(_E).order_by(_E.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [InboundEvent(**row._mapping) for row in conn.execute(stmt)]
