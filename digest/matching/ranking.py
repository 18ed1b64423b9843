"""How a matched paper is scored and how a subscriber's list is cut.

score = popularity * log(1 + upvotes) + recency / (1 + age in days)
      + sum over the profile's matched terms of rarity * (sum of matched field weights)

where rarity = log(1 + papers / papers containing the term) over the day's papers.
Each part is rounded to whole millionths ("units") before it is added, so a score is
an exact integer sum: the index (numpy, any order) and the naive evaluator (Python,
term by term) agree to the last bit. Ties go to the smaller paper id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from digest.matching.model import Limits, Weights

SCALE = 1e6


def units(x: float) -> int:
    """`x` in whole millionths, rounded half up."""
    return math.floor(x * SCALE + 0.5)


def score_of(total_units: int) -> float:
    return total_units / SCALE


def min_units(min_score: float | None) -> float:
    """The fewest units whose score is >= min_score (so filtering on units is exactly
    filtering on scores); -inf when there is no floor."""
    if min_score is None or math.isnan(min_score):
        return -math.inf
    if math.isinf(min_score):
        return min_score
    u = math.ceil(min_score * SCALE)
    while score_of(u - 1) >= min_score:
        u -= 1
    while score_of(u) < min_score:
        u += 1
    return float(u)


def rarity(df: int, n: int) -> float:
    return math.log(1.0 + n / df)


def field_weight(weights: Weights, field: str) -> float:
    return float(getattr(weights, field))


def contribution(fields_matched: Iterable[str], weights: Weights, idf: float) -> int:
    """What one matched term adds, in units: rarity times its matched fields' weights."""
    w = 0.0
    for f in fields_matched:
        w += field_weight(weights, f)
    return units(idf * w)


def _moment(paper: Any) -> datetime | None:
    published = getattr(paper, "published", None)
    if isinstance(published, datetime):
        return published if published.tzinfo else published.replace(tzinfo=UTC)
    if isinstance(published, date):
        return datetime(published.year, published.month, published.day, tzinfo=UTC)
    seen = getattr(paper, "first_seen", None)
    if isinstance(seen, datetime):
        return seen if seen.tzinfo else seen.replace(tzinfo=UTC)
    return None


def base_scores(papers: Sequence[Any], weights: Weights) -> list[int]:
    """Popularity and recency of each paper, in units; recency is relative to the
    newest paper of the batch, so the same batch always scores the same."""
    moments = [_moment(p) for p in papers]
    newest = max((m for m in moments if m is not None), default=None)
    out = []
    for paper, moment in zip(papers, moments, strict=True):
        upvotes = getattr(paper, "upvotes", None) or 0
        score = weights.popularity * math.log1p(max(int(upvotes), 0))
        if moment is not None and newest is not None:
            age = max((newest - moment).total_seconds(), 0.0) / 86400.0
            score += weights.recency / (1.0 + age)
        out.append(units(score))
    return out


def select_top(
    scored: list[tuple[float, int]], ids: Sequence[str], limits: Limits
) -> list[tuple[int, float]]:
    """Rank (score, paper index) pairs: min_score, then best first, ties by id, capped."""
    if limits.min_score is not None and not math.isnan(limits.min_score):
        scored = [x for x in scored if x[0] >= limits.min_score]
    scored.sort(key=lambda x: (-x[0], ids[x[1]], x[1]))
    return [(i, s) for s, i in scored[: max(limits.max_papers, 0)]]
