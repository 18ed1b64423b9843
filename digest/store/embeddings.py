"""Stored embeddings: one vector per paper and model, one per subscriber's interest.

Vectors are bytes (little-endian float32) here; what they mean is matching's
business (`digest.matching.embedding`). Every read and write names the model, so a
vector of another model (or version) is never handed out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from digest.models import Paper, PaperEmbedding, ProfileEmbedding

CHUNK = 500  # ids per IN (...) list


def _rows_of(engine: Engine, table: Any, key: Any, model: str, keys: Sequence[Any]) -> list[Any]:
    """The rows of `table` for `model` whose `key` is one of `keys` (CHUNK at a time)."""
    out: list[Any] = []
    with Session(engine) as session:
        for i in range(0, len(keys), CHUNK):
            stmt = select(table).where(col(table.model) == model, col(key).in_(keys[i : i + CHUNK]))
            out.extend(session.exec(stmt))
    return out


def paper_vectors(engine: Engine, model: str, ids: Sequence[str]) -> dict[str, bytes]:
    """The stored vectors of these papers (those that have one)."""
    rows = _rows_of(engine, PaperEmbedding, PaperEmbedding.paper_id, model, ids)
    return {row.paper_id: row.vector for row in rows}


def save_paper_vectors(engine: Engine, model: str, vectors: Mapping[str, bytes]) -> int:
    """Store vectors (replacing any of the same paper and model); how many."""
    with Session(engine) as session:
        for paper_id, raw in vectors.items():
            session.merge(PaperEmbedding(paper_id=paper_id, model=model, vector=raw))
        session.commit()
    return len(vectors)


def papers_without_vector(engine: Engine, model: str, limit: int | None = None) -> list[Paper]:
    """Stored papers that have no vector of `model` yet, newest first."""
    have = select(PaperEmbedding.paper_id).where(col(PaperEmbedding.model) == model)
    stmt = select(Paper).where(col(Paper.id).not_in(have)).order_by(col(Paper.seq).desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    with Session(engine) as session:
        return list(session.exec(stmt))


def count_paper_vectors(engine: Engine, model: str) -> int:
    with Session(engine) as session:
        stmt = select(PaperEmbedding.paper_id).where(col(PaperEmbedding.model) == model)
        return len(list(session.exec(stmt)))


def profile_vectors(
    engine: Engine, model: str, subscriber_ids: Sequence[int]
) -> dict[int, tuple[str, bytes]]:
    """(hash of the text it was computed from, vector) per subscriber that has one."""
    key = ProfileEmbedding.subscriber_id
    rows = _rows_of(engine, ProfileEmbedding, key, model, subscriber_ids)
    return {int(row.subscriber_id or 0): (row.topic_sha256, row.vector) for row in rows}


def save_profile_vector(
    engine: Engine, subscriber_id: int, model: str, topic_sha256: str, raw: bytes
) -> None:
    with Session(engine) as session:
        session.merge(
            ProfileEmbedding(
                subscriber_id=subscriber_id, model=model, topic_sha256=topic_sha256, vector=raw
            )
        )
        session.commit()


def delete_profile_vectors(engine: Engine, subscriber_id: int) -> None:
    with Session(engine) as session:
        session.exec(
            delete(ProfileEmbedding).where(col(ProfileEmbedding.subscriber_id) == subscriber_id)
        )
        session.commit()
