"""Rate events: the web app's counted actions (sign-ups per IP, mails per address)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from digest.models import RateEvent


def count_rate_events(engine: Engine, bucket: str, since: datetime) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count())
            .select_from(RateEvent)
            .where(RateEvent.bucket == bucket)
            .where(RateEvent.created_at >= since)
        ).one()


def add_rate_event(engine: Engine, bucket: str) -> None:
    with Session(engine) as session:
        session.add(RateEvent(bucket=bucket))
        session.commit()


def delete_rate_events(
    engine: Engine, buckets: Sequence[str] = (), before: datetime | None = None
) -> None:
    """Forget events in `buckets`, or all events older than `before`."""
    stmt = delete(RateEvent)
    if buckets:
        stmt = stmt.where(col(RateEvent.bucket).in_(list(buckets)))
    if before is not None:
        stmt = stmt.where(col(RateEvent.created_at) < before)
    with Session(engine) as session:
        session.exec(stmt)
        session.commit()
