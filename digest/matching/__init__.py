"""Matching: which stored papers each subscriber's profile selects, ranked and explained.

The public surface other stages use:
- `compile_profile(text) -> Profile` (raises `QueryError` with a position),
- `match_all(profiles, papers, limits, weights) -> {subscriber_key: [Match, ...]}`,
- `Match` with `.score`, `.hits`, `.terms()` and `.why()`,
- `highlight_spans(text, match)`: the character spans of `text` to highlight.

Inside: `text` (analysis), `synonyms` and `topics` (editable data files), `query`
(the language), `nodes` (compiled trees), `index` (the fast evaluator), `naive` (the
reference evaluator), `ranking` (scores and limits), `highlight`.
"""

from digest.matching.highlight import highlight_spans
from digest.matching.index import match_all
from digest.matching.model import Hit, Limits, Match, Weights
from digest.matching.nodes import Profile
from digest.matching.query import compile_profile, compile_stored

__all__ = [
    "Hit",
    "Limits",
    "Match",
    "Profile",
    "Weights",
    "compile_profile",
    "compile_stored",
    "highlight_spans",
    "match_all",
]
