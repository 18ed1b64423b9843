"""Embeddings where the stages meet the store: computing, storing and loading them.

Matching ranks plain-English interests with BM25, fused with embedding cosine when
the model is available (`digest.matching.embedding`, the `semantic` extra, and
`DIGEST_SEMANTIC` not `off`). This module is how the pipeline, previews and the
CLI get what that needs, computed once and stored:
- a paper's vector when it is fetched (`embed_new_papers`, after `merge_papers`),
  and lazily for a paper that has none when it is ranked (`paper_set`);
- an interest's vector when the profile is saved (`save_profile_vector`), reloaded
  by `profiles_of` (recomputed if the interest changed since);
- the example papers profiles name (liked and disliked ids), looked up by id; one
  not stored yet is skipped until it arrives.

`profiles_of(engine, settings, subscribers, ratings)` is the one place an edition's
profiles are built: `ratings` (subscriber id -> (liked ids, disliked ids), e.g. the
"more/less like this" links) join each profile through `matching.profile_of`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from digest import store
from digest.config import Settings
from digest.errors import ConfigError
from digest.matching import (
    Embedder,
    Example,
    Interest,
    Profile,
    SemanticPapers,
    load_embedder,
    profile_of,
)
from digest.matching.embedding import MODEL_NAME, from_bytes, paper_text, to_bytes
from digest.models import Subscriber
from digest.store import Engine
from digest.store.claims import SubscriberRow

EMBED_CHUNK = 64  # papers embedded and stored per transaction


def embedder(settings: Settings) -> Embedder | None:
    """The model, unless DIGEST_SEMANTIC=off or it cannot be loaded here (then BM25
    alone ranks interests; with DIGEST_SEMANTIC=on that is a configuration error)."""
    if settings.semantic == "off":
        return None
    found = load_embedder(settings.embed_threads)
    if found.embedder is None and settings.semantic == "on":
        raise ConfigError(f"DIGEST_SEMANTIC=on, but the model cannot be loaded: {found.reason}")
    return found.embedder


def ranking_status(settings: Settings) -> dict[str, Any]:
    """Which ranking interests get here, and why (for `digest status`)."""
    if settings.semantic == "off":
        return {"ranking": "lexical", "model": None, "reason": "DIGEST_SEMANTIC=off"}
    found = load_embedder(settings.embed_threads)
    if found.embedder is None:
        return {"ranking": "lexical", "model": None, "reason": found.reason}
    return {"ranking": "semantic", "model": MODEL_NAME, "reason": found.reason}


def _embed_and_store(engine: Engine, model: Embedder, papers: Sequence[Any]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for lo in range(0, len(papers), EMBED_CHUNK):
        chunk = papers[lo : lo + EMBED_CHUNK]
        vectors = model.embed([paper_text(p) for p in chunk])
        raw = {str(p.id): to_bytes(v) for p, v in zip(chunk, vectors, strict=True)}
        store.save_paper_vectors(engine, model.name, raw)
        out.update(raw)
    return out


def wanted(engine: Engine) -> bool:
    """Whether any subscriber has an interest or example papers (else vectors wait)."""
    return store.any_interest(engine)


def embed_new_papers(engine: Engine, settings: Settings, limit: int | None = None) -> int:
    """Compute and store the vectors of stored papers that have none (newest first);
    how many. Nothing when the model is off or no subscriber has an interest: a
    keyword-only service never pays for embeddings (`paper_set` fills gaps later)."""
    if settings.semantic == "off" or not wanted(engine):
        return 0
    model = embedder(settings)
    if model is None:
        return 0
    missing = store.papers_without_vector(engine, model.name, limit)
    return len(_embed_and_store(engine, model, missing))


def interests_in(profiles: Iterable[Profile]) -> list[Interest]:
    """The interest parts of `profiles` (none: nothing semantic to prepare)."""
    return [p for prof in profiles for p in prof.parts if isinstance(p, Interest)]


def paper_set(
    engine: Engine,
    settings: Settings,
    papers: Sequence[Any],
    profiles: Iterable[Profile],
    embed_missing: bool = True,
) -> Sequence[Any]:
    """`papers` made ready for ranking `profiles`: unchanged when no profile has an
    interest; else a `SemanticPapers` with their vectors (computed now for any that
    lacks one) and the example papers the profiles name. `embed_missing` False (the
    web's live preview, which has seconds): when some vector is missing, the papers
    rank lexically instead of waiting for the model (~15 papers/s a core).

    For one ranking (previews, check-query). An edition ranked in chunks calls
    `edition_papers` once per paper set and `with_examples` per chunk instead."""
    interests = interests_in(profiles)
    if not interests:
        return papers
    ready = edition_papers(engine, settings, papers, embed_missing)
    return with_examples(engine, ready, interests, embed_missing)


def edition_papers(
    engine: Engine, settings: Settings, papers: Sequence[Any], embed_missing: bool = True
) -> SemanticPapers:
    """What ranking interests needs of `papers` whoever ranks them: their vectors
    (stored ones, the missing computed and stored, unless not `embed_missing`: then
    none, BM25 alone) and the model. Made once per paper set; examples come per
    chunk (`with_examples`)."""
    model = embedder(settings)
    if model is None:
        return SemanticPapers(papers)
    raw = store.paper_vectors(engine, model.name, list(dict.fromkeys(str(p.id) for p in papers)))
    missing = [p for p in {str(p.id): p for p in papers}.values() if str(p.id) not in raw]
    if missing and not embed_missing:
        return SemanticPapers(papers)
    raw.update(_embed_and_store(engine, model, missing))
    vectors = np.zeros((len(papers), model.dim), dtype=np.float32)
    for row, paper in enumerate(papers):
        vec = from_bytes(raw.get(str(paper.id), b""))
        if vec is not None:
            vectors[row] = vec
    return SemanticPapers(papers, vectors, model)


def with_examples(
    engine: Engine, ready: SemanticPapers, interests: Iterable[Interest], embed_missing: bool = True
) -> SemanticPapers:
    """`ready` with the example papers `interests` like or dislike (looked up by id,
    with their vectors; one not stored yet is skipped): the per-chunk part. Shares
    `ready`'s indexes; without `embed_missing`, an example lacking a vector makes the
    whole set lexical (as `paper_set` always did)."""
    example_ids = sorted({i for part in interests for i in part.liked + part.disliked})
    stored = store.papers_by_ids(engine, example_ids) if example_ids else {}
    model = ready.embedder
    if model is None:
        return ready.with_examples({pid: Example.of(p) for pid, p in stored.items()})
    raw = store.paper_vectors(engine, model.name, list(stored)) if stored else {}
    missing = [p for pid, p in stored.items() if pid not in raw]
    if missing and not embed_missing:
        lexical = {pid: Example.of(p) for pid, p in stored.items()}
        return SemanticPapers(ready, None, None, lexical)
    raw.update(_embed_and_store(engine, model, missing))
    return ready.with_examples(
        {pid: Example.of(p, from_bytes(raw.get(pid, b""))) for pid, p in stored.items()}
    )


def _topic_hash(topic: str) -> str:
    return hashlib.sha256(topic.encode("utf-8", "surrogatepass")).hexdigest()


def save_profile_vector(
    engine: Engine, settings: Settings, sub: Subscriber | SubscriberRow
) -> None:
    """Embed the subscriber's interest once, when it is saved (nothing without one,
    or without the model: the ranking embeds it when needed)."""
    model = embedder(settings)
    if model is None or sub.id is None:
        return
    topic = Interest.of(sub.interest).topic
    if not topic:
        store.delete_profile_vectors(engine, sub.id)
        return
    vector = model.embed_one(topic)
    store.save_profile_vector(engine, sub.id, model.name, _topic_hash(topic), to_bytes(vector))


def profiles_of(
    engine: Engine,
    settings: Settings,
    subscribers: Sequence[Subscriber | SubscriberRow],
    ratings: Mapping[int, tuple[Sequence[str], Sequence[str]]] | None = None,
) -> dict[int, Profile]:
    """Every subscriber's profile, with their interest's stored vector (recomputed
    and stored again if the interest changed) and any `ratings` as examples."""
    ratings = ratings or {}
    with_interest = [s for s in subscribers if s.id is not None and (s.interest or "").strip()]
    model = embedder(settings) if with_interest else None
    vectors: dict[int, np.ndarray] = {}
    if model is not None:
        stored = store.profile_vectors(engine, model.name, [int(s.id or 0) for s in with_interest])
        for sub in with_interest:
            sid = int(sub.id or 0)
            topic = Interest.of(sub.interest).topic
            found = stored.get(sid)
            if found is None or found[0] != _topic_hash(topic):
                save_profile_vector(engine, settings, sub)
                found = store.profile_vectors(engine, model.name, [sid]).get(sid)
            vec = from_bytes(found[1]) if found else None
            if vec is not None:
                vectors[sid] = vec
    out: dict[int, Profile] = {}
    for sub in subscribers:
        sid = int(sub.id or 0)
        liked, disliked = ratings.get(sid, ((), ()))
        out[sid] = profile_of(sub, tuple(liked), tuple(disliked), vectors.get(sid))
    return out
