"""Rate events: the web app's counted actions (sign-ups per IP, mails per address)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, text
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


def take_rate_slot(engine: Engine, bucket: str, limit: int, since: datetime) -> bool:
    """Count one event in `bucket` unless `limit` events were counted since `since`,
    as one atomic step: two requests at once can never both take the last slot.

    The event is inserted first and counted after, in one transaction that is rolled
    back when over the limit. On SQLite that insert takes the database's write lock,
    so the count sees every event committed before it; on PostgreSQL a transaction
    advisory lock on the bucket serialises its takers (a row lock could not stop a
    concurrent insert)."""
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            session.exec(  # type: ignore[call-overload]
                text("SELECT pg_advisory_xact_lock(hashtext(:bucket))"), params={"bucket": bucket}
            )
        session.add(RateEvent(bucket=bucket))
        session.flush()
        counted = session.exec(
            select(func.count())
            .select_from(RateEvent)
            .where(RateEvent.bucket == bucket)
            .where(RateEvent.created_at >= since)
        ).one()
        if counted > limit:
            session.rollback()
            return False
        session.commit()
        return True
