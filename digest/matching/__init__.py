"""Matching: which stored papers each subscriber's profile selects, ranked and explained.

The public surface other stages use (the callers use nothing else):
- `rank(profiles, papers, weights) -> {key: [Match, ...]}`: the matcher seam; every
  profile's ranked, capped, explained matches among the edition's papers, keyed as
  the caller keys them (`matcher.py`),
- `Profile`: a subscriber's profile, a typed value of parts with a kind
  (`KeywordQuery`, `Interest`: plain English and example papers) and its `Limits`; built by `profile_of(row)` from a stored
  subscriber (lenient) or `profile_from_input(text, max_papers, min_score)` from what
  a person typed (strict: raises `QueryError` with a position) (`profiles.py`, whose
  docstring says how to add a kind),
- `Weights.from_settings(settings)`: the operator's ranking weights,
- `Match` with `.score`, `.hits`, `.terms()` and `.why()`, and `explanations_json`
  (a digest's matches as the JSON text its outbox row stores),
- `highlight_spans(text, match)`: the character spans of `text` to highlight,
- `matched_authors(authors, match)`: which authors an `author:` term found,
- `readable_terms([(match, paper), ...])`: what matched, in words (for subjects),
- `topic_named(text)`: the topic a `topic:NAME` term names (for the web forms),
- `query_warnings(text)`: likely slips in a query (a lower-case `and` read as a word),
- `SemanticPapers(papers, vectors, embedder, examples)`: papers with their embeddings
  and the example papers profiles name (`Example`), for semantic ranking; without it
  interests rank lexically (BM25); `load_embedder()` loads the packaged model
  (`embedding.py`),
- `IndexedPapers(papers)`: a paper set to rank many times; `rank` given one reuses
  its index instead of building one per call (the web preview).

Lower level, for tests and benchmarks: `compile_profile` / `compile_stored` (a keyword
query's compiled tree, `nodes.Profile`) and `match_all` (the keyword index itself).

Inside: `text` (analysis), `synonyms` and `topics` (editable data files), `query`
(the language), `nodes` (compiled trees), `index` (the fast evaluator), `naive` (the
reference evaluator), `ranking` (scores and limits), `highlight`, `readable` (matched
terms as words, for subjects), `profiles` (profile values), `keywords` (the keyword
language as a ranker), `matcher` (the seam, `rank`).
"""

from typing import TYPE_CHECKING

from digest.lazy_exports import lazy_exports

# The names below are imported from their modules when first used (PEP 562): a
# command that only checks a profile (`digest subscribe -k ...`) must not pay for
# numpy, the index or the embedding code at start-up.
if TYPE_CHECKING:
    from digest.matching.embedding import Embedder, load_embedder
    from digest.matching.highlight import highlight_spans, matched_authors
    from digest.matching.index import IndexedPapers, match_all
    from digest.matching.interest import Interest, split_interest
    from digest.matching.interests import Example, SemanticPapers
    from digest.matching.matcher import ProfileKindError, rank
    from digest.matching.model import Hit, Limits, Match, Weights, explanations_json
    from digest.matching.profiles import (
        KeywordQuery,
        Profile,
        ProfilePart,
        profile_from_input,
        profile_of,
    )
    from digest.matching.query import compile_profile, compile_stored, query_warnings, topic_named
    from digest.matching.readable import readable_terms

__all__ = [
    "Embedder",
    "Example",
    "Interest",
    "SemanticPapers",
    "load_embedder",
    "split_interest",
    "Hit",
    "IndexedPapers",
    "KeywordQuery",
    "Limits",
    "Match",
    "Profile",
    "ProfileKindError",
    "ProfilePart",
    "Weights",
    "compile_profile",
    "compile_stored",
    "explanations_json",
    "highlight_spans",
    "match_all",
    "matched_authors",
    "profile_from_input",
    "profile_of",
    "query_warnings",
    "readable_terms",
    "rank",
    "topic_named",
]

_MODULES = {
    "Embedder": "embedding",
    "load_embedder": "embedding",
    "highlight_spans": "highlight",
    "matched_authors": "highlight",
    "IndexedPapers": "index",
    "match_all": "index",
    "Interest": "interest",
    "split_interest": "interest",
    "Example": "interests",
    "SemanticPapers": "interests",
    "ProfileKindError": "matcher",
    "rank": "matcher",
    "Hit": "model",
    "Limits": "model",
    "Match": "model",
    "Weights": "model",
    "explanations_json": "model",
    "KeywordQuery": "profiles",
    "Profile": "profiles",
    "ProfilePart": "profiles",
    "profile_from_input": "profiles",
    "profile_of": "profiles",
    "compile_profile": "query",
    "compile_stored": "query",
    "query_warnings": "query",
    "topic_named": "query",
    "readable_terms": "readable",
}


__getattr__, __dir__ = lazy_exports(globals(), _MODULES)
