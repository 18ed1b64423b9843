"""The keyword language as a ranker: `KeywordQuery` parts through the bitset index.

A thin adapter over `index.match_all`: each part already carries its compiled query
(compiled once, through the cache), so an edition is still one index and a few
bitwise operations per profile.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from digest.matching.index import match_all
from digest.matching.model import Limits, Match, Weights
from digest.matching.profiles import KeywordQuery


def rank_keywords(
    parts: Mapping[Hashable, KeywordQuery],
    limits: Mapping[Hashable, Limits],
    papers: Sequence[Any],
    weights: Weights,
) -> dict[Hashable, list[Match]]:
    """Each key's ranked, capped matches for its keyword query."""
    return match_all({key: part.query for key, part in parts.items()}, papers, limits, weights)
