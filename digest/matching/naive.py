"""The reference evaluator: every profile against every paper, one by one.

It is slow on purpose (papers x profiles x terms) and simple enough to trust; the
index must give exactly its results (see tests and bench/match.py). A term scores and
explains a paper only when it is live there: found in a clause that is satisfied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from digest.matching.documents import analyse_paper
from digest.matching.model import Hit, Limits, Match, Weights
from digest.matching.nodes import Profile
from digest.matching.ranking import base_scores, contribution, rarity, score_of, select_top


def match_all_naive(
    profiles: Mapping[Any, Profile],
    papers: Sequence[Any],
    limits: Mapping[Any, Limits] | None = None,
    weights: Weights | None = None,
) -> dict[Any, list[Match]]:
    weights = weights or Weights()
    limits = limits or {}
    docs = [analyse_paper(p) for p in papers]
    ids = [str(p.id) for p in papers]
    base = base_scores(papers, weights)
    idf: dict[str, float] = {}
    out: dict[Any, list[Match]] = {}
    for key, profile in profiles.items():
        scored: list[tuple[float, int]] = []
        hits: dict[int, list[Hit]] = {}
        for i, doc in enumerate(docs):
            live = profile.root.live_keys(doc)
            if live is None:
                continue
            score = base[i]
            found: list[Hit] = []
            for term in profile.terms:
                if term.key not in live:  # found only in a clause that failed
                    continue
                fields = term.fields_in(doc)
                if not fields:
                    continue
                if term.key not in idf:
                    df = sum(1 for d in docs if term.fields_in(d))
                    idf[term.key] = rarity(df, len(docs))
                score += contribution(fields, weights, idf[term.key])
                found.extend(Hit(term.label, f, term.topic) for f in fields)
            scored.append((score_of(score), i))
            hits[i] = found
        ranked = select_top(scored, ids, limits.get(key, Limits()))
        out[key] = [Match(ids[i], s, hits[i]) for i, s in ranked]
    return out
