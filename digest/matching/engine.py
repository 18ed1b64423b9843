"""A first, simple matcher: a profile is a comma-separated list of keywords and quoted
phrases, matched on word boundaries in title and abstract, case-insensitively.

User text is never turned into a regular expression: both sides are tokenised and
phrases are compared as token sequences.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from digest.errors import QueryError

MAX_QUERY_CHARS = 4000
MAX_TERMS = 200
_TOKEN_RE = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(unicodedata.normalize("NFKC", text).casefold())


@dataclass(frozen=True)
class Hit:
    """One reason a paper matched: the term as written, the field, the topic if any."""

    term: str
    field: str
    topic: str | None = None


@dataclass
class Match:
    paper_id: str
    score: float
    hits: list[Hit] = field(default_factory=list)

    def terms(self) -> list[str]:
        return list(dict.fromkeys(h.term for h in self.hits))

    def why(self) -> str:
        return "matched: " + ", ".join(self.terms()) if self.hits else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "hits": [{"term": h.term, "field": h.field, "topic": h.topic} for h in self.hits],
            "why": self.why(),
        }


@dataclass(frozen=True)
class Profile:
    text: str
    terms: tuple[tuple[str, tuple[str, ...]], ...]  # (as written, tokens)


@dataclass(frozen=True)
class Limits:
    max_papers: int = 20
    min_score: float | None = None


@dataclass(frozen=True)
class Weights:
    title: float = 3.0
    abstract: float = 1.0
    author: float = 2.0
    category: float = 1.0
    keyword: float = 1.5
    popularity: float = 1.0
    recency: float = 0.5


def compile_profile(text: str) -> Profile:
    """Parse `a, "b c", d`; an empty profile or an unterminated quote is a QueryError."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query is longer than {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS)
    terms: list[tuple[str, tuple[str, ...]]] = []
    pos = 0
    for part in text.split(","):
        stripped = part.strip()
        start = pos + (len(part) - len(part.lstrip()))
        pos += len(part) + 1
        if not stripped:
            continue
        if stripped.count('"') % 2:
            raise QueryError("unterminated quote", start + stripped.index('"'), text)
        word = stripped.strip('"').strip()
        tokens = tuple(tokenize(word))
        if not tokens:
            raise QueryError(f"term {stripped!r} has no letters or digits", start, text)
        terms.append((word, tokens))
    if not terms:
        raise QueryError("the profile is empty: give at least one keyword", 0, text)
    if len(terms) > MAX_TERMS:
        raise QueryError(f"more than {MAX_TERMS} terms", 0, text)
    return Profile(text=text, terms=tuple(terms))


def _contains(haystack: Sequence[str], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    first = needle[0]
    for i, tok in enumerate(haystack):
        if tok == first and tuple(haystack[i : i + n]) == needle:
            return True
    return False


def match_all(
    profiles: Mapping[Any, Profile],
    papers: Sequence[Any],
    limits: Mapping[Any, Limits] | None = None,
    weights: Weights | None = None,
) -> dict[Any, list[Match]]:
    """Match each profile against each paper (title and abstract) and rank the hits."""
    weights = weights or Weights()
    limits = limits or {}
    docs = [(p, tokenize(p.title), tokenize(p.abstract or "")) for p in papers]
    out: dict[Any, list[Match]] = {}
    for key, profile in profiles.items():
        matches = []
        for paper, title, abstract in docs:
            hits = []
            score = 0.0
            for word, tokens in profile.terms:
                if _contains(title, tokens):
                    hits.append(Hit(word, "title"))
                    score += weights.title
                elif _contains(abstract, tokens):
                    hits.append(Hit(word, "abstract"))
                    score += weights.abstract
            if hits:
                matches.append(Match(paper.id, score, hits))
        lim = limits.get(key, Limits())
        if lim.min_score is not None:
            matches = [m for m in matches if m.score >= lim.min_score]
        matches.sort(key=lambda m: (-m.score, m.paper_id))
        out[key] = matches[: lim.max_papers]
    return out


def highlight_spans(text: str, match: Match) -> list[tuple[int, int]]:
    """Character spans of `text` that made `match` (for highlighting), sorted, disjoint."""
    words = [(m.start(), m.end(), m.group().casefold()) for m in _TOKEN_RE.finditer(text)]
    wanted = {tuple(tokenize(h.term)) for h in match.hits}
    spans = []
    for needle in wanted:
        n = len(needle)
        if not n:
            continue
        for i in range(len(words) - n + 1):
            if tuple(w[2] for w in words[i : i + n]) == needle:
                spans.append((words[i][0], words[i + n - 1][1]))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
