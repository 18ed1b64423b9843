"""Ratings: a subscriber's "more like this" / "less like this" on papers.

One row per (subscriber, paper), so recording is idempotent: a replayed click finds
its row and changes nothing, the other link flips the vote, undo deletes the row.
The pipeline reads them for many subscribers at once (`ratings_for`), in chunks, so
an edition costs a handful of queries, not one per subscriber.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest.models import Paper, Rating, utcnow

CHUNK = 500  # ids per IN (...) list: far below every database's bound on parameters


class Recorded(StrEnum):
    """What `record_rating` did."""

    NEW = "new"
    CHANGED = "changed"  # the other vote was there: flipped
    UNCHANGED = "unchanged"  # the same vote was there already (a replay)


@dataclass(frozen=True)
class RatedPaper:
    """One rating as the manage page lists it; `title` is None when the paper is gone."""

    paper_id: str
    vote: int
    created_at: datetime
    title: str | None


def record_rating(engine: Engine, subscriber_id: int, paper_id: str, vote: int) -> Recorded:
    """Record `vote` (+1 / -1) once. Two clicks racing: the loser of the unique
    constraint reads the winner's row and answers as a replay would."""
    if vote not in (1, -1):
        raise ValueError(f"a vote is +1 or -1, not {vote!r}")
    for _ in range(2):
        with Session(engine) as session:
            row = _find(session, subscriber_id, paper_id)
            if row is not None:
                if row.vote == vote:
                    return Recorded.UNCHANGED
                row.vote, row.created_at = vote, utcnow()
                session.add(row)
                session.commit()
                return Recorded.CHANGED
            session.add(Rating(subscriber_id=subscriber_id, paper_id=paper_id, vote=vote))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                continue
            return Recorded.NEW
    return Recorded.UNCHANGED


def _find(session: Session, subscriber_id: int, paper_id: str) -> Rating | None:
    return session.exec(
        select(Rating)
        .where(Rating.subscriber_id == subscriber_id)
        .where(Rating.paper_id == paper_id)
    ).first()


def get_rating(engine: Engine, subscriber_id: int, paper_id: str) -> int | None:
    """The subscriber's vote on the paper, None when there is none."""
    with Session(engine) as session:
        row = _find(session, subscriber_id, paper_id)
        return row.vote if row is not None else None


def undo_rating(engine: Engine, subscriber_id: int, paper_id: str) -> bool:
    """Forget the subscriber's vote on one paper; False when there was none."""
    return clear_ratings(engine, subscriber_id, [paper_id]) > 0


def clear_ratings(
    engine: Engine, subscriber_id: int, paper_ids: Sequence[str] | None = None
) -> int:
    """Forget the subscriber's votes on `paper_ids` (every vote when None); how many."""
    stmt = delete(Rating).where(col(Rating.subscriber_id) == subscriber_id)
    if paper_ids is not None:
        if not paper_ids:
            return 0
        stmt = stmt.where(col(Rating.paper_id).in_(list(paper_ids)[:CHUNK]))
    with Session(engine) as session:
        result = session.exec(stmt)
        session.commit()
        return result.rowcount or 0


def list_ratings(engine: Engine, subscriber_id: int) -> list[RatedPaper]:
    """The subscriber's ratings, newest first, with each paper's title."""
    stmt = (
        select(Rating, Paper.title)
        .join(Paper, col(Paper.id) == col(Rating.paper_id), isouter=True)
        .where(Rating.subscriber_id == subscriber_id)
        .order_by(col(Rating.created_at).desc(), col(Rating.id).desc())
    )
    with Session(engine) as session:
        return [
            RatedPaper(r.paper_id, r.vote, r.created_at, title) for r, title in session.exec(stmt)
        ]


def ratings_for(engine: Engine, subscriber_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """subscriber id -> {paper id: vote} for every given subscriber with ratings,
    read in chunks (one query per CHUNK subscribers, for a whole edition)."""
    out: dict[int, dict[str, int]] = {}
    ids = sorted(set(subscriber_ids))
    with Session(engine) as session:
        for i in range(0, len(ids), CHUNK):
            stmt = select(Rating.subscriber_id, Rating.paper_id, Rating.vote).where(
                col(Rating.subscriber_id).in_(ids[i : i + CHUNK])
            )
            for sub_id, paper_id, vote in session.exec(stmt):
                out.setdefault(sub_id, {})[paper_id] = vote
    return out


def rated_examples(
    engine: Engine, subscriber_ids: Sequence[int]
) -> dict[int, tuple[list[str], list[str]]]:
    """subscriber id -> (paper ids rated "more like this", rated "less like this"):
    the example papers ratings add to each profile (`semantic.profiles_of`)."""
    out: dict[int, tuple[list[str], list[str]]] = {}
    for sub_id, votes in ratings_for(engine, subscriber_ids).items():
        out[sub_id] = (
            sorted(p for p, v in votes.items() if v > 0),
            sorted(p for p, v in votes.items() if v < 0),
        )
    return out
