"""Matching: which stored papers each subscriber's profile selects, ranked and explained.

The public surface other stages use:
- `compile_profile(text) -> Profile` (raises `QueryError` with a position),
- `match_all(profiles, papers, limits, weights) -> {subscriber_key: [Match, ...]}`,
- `Match` with `.score`, `.hits` and `.why()`.
"""

from digest.matching.engine import Hit, Limits, Match, Profile, Weights, compile_profile, match_all

__all__ = ["Hit", "Limits", "Match", "Profile", "Weights", "compile_profile", "match_all"]
