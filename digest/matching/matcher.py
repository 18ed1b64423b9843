"""The matcher seam: subscribers' profiles and an edition's papers in, ranked and
explained matches out, whatever kinds of profile part there are.

`rank` groups the profiles' parts by kind and gives each group to the ranker
registered for that kind in `RANKERS` (one call per kind, so a ranker can index the
papers once for all its profiles). A ranker is a function
`(parts by key, limits by key, papers, weights) -> matches by key`, answering every
key it is given (an empty list for a profile that matches nothing).

A profile with one part gets that part's matches. A profile with a keyword query
and an interest (`Interest`: a plain-English text and/or example papers) gets its
query's matches re-ranked by the interest (`fusion.rank_fused`); any other mix of
parts is a `ProfileKindError`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from digest.matching.fusion import rank_fused
from digest.matching.interest import Interest
from digest.matching.interests import rank_interests
from digest.matching.keywords import rank_keywords
from digest.matching.model import Limits, Match, Weights
from digest.matching.profiles import KeywordQuery, Profile, ProfilePart

K = TypeVar("K", bound=Hashable)

Ranker = Callable[
    [Mapping[Hashable, Any], Mapping[Hashable, Limits], Sequence[Any], Weights],
    dict[Hashable, list[Match]],
]

# The kind of each part -> the function that ranks parts of that kind.
RANKERS: Mapping[type, Ranker] = {KeywordQuery: rank_keywords, Interest: rank_interests}


class ProfileKindError(TypeError):
    """A profile the registered rankers cannot rank (a part of an unknown kind, or
    several parts with no rule to fuse them): a programming error, not bad input."""


def ranker_for(part: ProfilePart, rankers: Mapping[type, Ranker] = RANKERS) -> Ranker:
    ranker = rankers.get(type(part))
    if ranker is None:
        kind = getattr(part, "kind", type(part).__name__)
        known = ", ".join(sorted(getattr(t, "kind", t.__name__) for t in rankers))
        raise ProfileKindError(
            f"no ranker for profile part kind {kind!r} ({type(part).__name__}); "
            f"known kinds: {known}. Register one in digest.matching.matcher.RANKERS."
        )
    return ranker


def rank(
    profiles: Mapping[K, Profile],
    papers: Sequence[Any],
    weights: Weights | None = None,
    rankers: Mapping[type, Ranker] = RANKERS,
) -> dict[K, list[Match]]:
    """Every profile's ranked, capped, explained matches among `papers`.

    Keys are the caller's (subscriber ids, or 0 for a one-off preview). Every part's
    kind is checked before any work is done, so an unknown kind fails fast and clearly.
    """
    weights = weights or Weights()
    by_kind: dict[type, dict[Hashable, Any]] = {}
    limits: dict[Hashable, Limits] = {}
    fused_kw: dict[Hashable, KeywordQuery] = {}
    fused_int: dict[Hashable, Interest] = {}
    for key, profile in profiles.items():
        parts = profile.parts
        if len(parts) != 1:
            kw = next((p for p in parts if isinstance(p, KeywordQuery)), None)
            wants = next((p for p in parts if isinstance(p, Interest)), None)
            if len(parts) != 2 or kw is None or wants is None:
                raise ProfileKindError(
                    "a profile with several parts must be one keyword query and one "
                    "interest; no rule fuses "
                    + ", ".join(getattr(p, "kind", type(p).__name__) for p in parts)
                )
            fused_kw[key], fused_int[key] = kw, wants
            limits[key] = profile.limits
            continue
        part = parts[0]
        group = by_kind.get(type(part))
        if group is None:
            ranker_for(part, rankers)  # an unknown kind raises here, naming it
            group = by_kind[type(part)] = {}
        group[key] = part
        limits[key] = profile.limits
    if len(by_kind) == 1 and not fused_kw:  # one kind: its ranker answers every key
        ((kind, parts_by_key),) = by_kind.items()
        return rankers[kind](parts_by_key, limits, papers, weights)  # type: ignore[return-value]
    out: dict[Hashable, list[Match]] = {}
    if fused_kw:
        out.update(rank_fused(fused_kw, fused_int, limits, papers, weights))
    for kind, parts_by_key in by_kind.items():
        out.update(rankers[kind](parts_by_key, limits, papers, weights))
    return {key: out[key] for key in profiles}
