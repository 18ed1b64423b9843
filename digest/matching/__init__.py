"""Matching: which stored papers each subscriber's profile selects, ranked and explained.

The public surface other stages use:
- `compile_profile(text) -> Profile` (raises `QueryError` with a position),
- `match_all(profiles, papers, limits, weights) -> {subscriber_key: [Match, ...]}`,
- `Match` with `.score`, `.hits`, `.terms()` and `.why()`,
- `highlight_spans(text, match)`: the character spans of `text` to highlight.
"""

from digest.matching.engine import (
    Hit,
    Limits,
    Match,
    Profile,
    Weights,
    compile_profile,
    highlight_spans,
    match_all,
)

__all__ = [
    "Hit",
    "Limits",
    "Match",
    "Profile",
    "Weights",
    "compile_profile",
    "highlight_spans",
    "match_all",
]
