"""Editions: one digest row per subscriber per edition, written with the watermark
that says which papers it covered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from digest.models import Digest


def digests_for_edition(engine: Engine, edition: str | None = None) -> list[Digest]:
    with Session(engine) as session:
        stmt = select(Digest)
        if edition:
            stmt = stmt.where(Digest.edition == edition)
        return list(session.exec(stmt.order_by(col(Digest.id))))


def last_editions(engine: Engine, subscriber_ids: Sequence[int]) -> dict[int, tuple[datetime, str]]:
    """Subscriber id -> (when their latest edition was built, the latest edition key),
    counting sent, pending and empty ones: the scheduler's memory of whom it served."""
    out: dict[int, tuple[datetime, str]] = {}
    with Session(engine) as session:
        for i in range(0, len(subscriber_ids), 500):
            chunk = list(subscriber_ids[i : i + 500])
            stmt = (
                select(Digest.subscriber_id, func.max(Digest.created_at), func.max(Digest.edition))
                .where(col(Digest.subscriber_id).in_(chunk))
                .group_by(col(Digest.subscriber_id))
            )
            out.update({sid: (at, ed) for sid, at, ed in session.exec(stmt) if at is not None})
    return out


def digest_for(engine: Engine, subscriber_id: int, edition: str) -> Digest | None:
    with Session(engine) as session:
        return session.exec(
            select(Digest)
            .where(Digest.subscriber_id == subscriber_id)
            .where(Digest.edition == edition)
        ).first()


def edition_summary(engine: Engine) -> list[dict[str, Any]]:
    """Per edition: how many outbox rows are in each status, newest edition first."""
    with Session(engine) as session:
        rows = session.exec(
            select(Digest.edition, Digest.status, func.count()).group_by(
                Digest.edition, Digest.status
            )
        ).all()
    out: dict[str, dict[str, int]] = {}
    for edition, status, count in rows:
        out.setdefault(edition, {})[status] = count
    return [
        {"edition": e, "total": sum(c.values()), "statuses": c}
        for e, c in sorted(out.items(), reverse=True)
    ]


def editions_done(engine: Engine, keys: dict[int, str]) -> set[tuple[int, str]]:
    """Which (subscriber id, edition) pairs of `keys` already have a digest row."""
    if not keys:
        return set()
    with Session(engine) as session:
        return set(
            session.exec(
                select(Digest.subscriber_id, Digest.edition)
                .where(col(Digest.subscriber_id).in_(list(keys)))
                .where(col(Digest.edition).in_(set(keys.values())))
            )
        )
