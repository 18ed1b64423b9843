"""Matched terms in the words a reader uses, for a subject line or a heading.

The query language is for writing profiles, not for reading mail: a subject that says
"agent*, topic:ai-safety, author:\"Yann LeCun\"" shows syntax. Here a topic becomes its
title, a prefix the word it most often matched in the digest ("agents"), an author
"papers by Yann LeCun", a category its name ("cs.CL"), a phrase its words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from digest.matching import topics as topic_catalogue
from digest.matching.highlight import TextAnalysis, authors_named
from digest.matching.model import Hit, Match

# Characters of a field searched for the words a prefix matched (fields are bounded
# when shown; a hostile abstract must not make a subject expensive).
SCAN = 8000
_TEXT_FIELDS = {"title": ("title",), "abstract": ("abstract",), "keyword": ("ai_keywords",)}


def readable_terms(
    found: Sequence[tuple[Match, Any]], limit: int = 3, analysis: TextAnalysis | None = None
) -> list[str]:
    """The first `limit` distinct things the digest's matches were found by, in
    digest order, as words: `found` is (match, paper) for each item. `analysis` is
    the run's, so a paper's text is analysed once for every digest that shows it."""
    analysis = analysis or TextAnalysis()
    out: dict[str, None] = {}
    prefixes: dict[str, str] = {}  # a prefix term's word is the same for every hit
    for match, paper in found:
        for hit in match.hits:
            if "*" in hit.term and hit.field not in ("author", "category") and not hit.topic:
                word = prefixes.get(hit.term) or prefixes.setdefault(
                    hit.term, _readable(hit, paper, found, analysis)
                )
            else:
                word = _readable(hit, paper, found, analysis)
            if word and word not in out:
                out[word] = None
                if len(out) == limit:
                    return list(out)
    return list(out)


def _readable(
    hit: Hit, paper: Any, found: Sequence[tuple[Match, Any]], analysis: TextAnalysis
) -> str:
    topic = topic_catalogue.load_catalogue().get(hit.topic or "")
    if topic is not None:  # (a topic since removed from the catalogue: its words)
        return topic.title
    if hit.field == "author":
        authors = list(getattr(paper, "authors", None) or [])
        named = [authors[i] for i in authors_named(authors, [hit.term])]
        return f"papers by {' '.join(str(named[0] if named else hit.term).split())}"
    if hit.field == "category":
        return hit.term.rstrip("*").rstrip(".")
    if "*" in hit.term:
        return _most_matched(hit.term, found, analysis) or hit.term.replace("*", "…")
    return hit.term


def _most_matched(
    label: str, found: Sequence[tuple[Match, Any]], analysis: TextAnalysis
) -> str | None:
    """The text a prefix term matched most often in the digest's papers ("agents" for
    `agent*`), as written there but with a capital that only starts a sentence dropped."""
    counts: Counter[str] = Counter()
    for match, paper in found:
        fields = {h.field for h in match.hits if h.term == label}
        # In a fixed order (a set's order changes with the hash seed, and on a tie the
        # text counted first wins: the subject must not change from run to run).
        for field in [f for f in _TEXT_FIELDS if f in fields]:
            for attr in _TEXT_FIELDS[field]:
                for text in _texts(getattr(paper, attr, None)):
                    counts.update(analysis.of(text, SCAN).matched_texts(label))
    return counts.most_common(1)[0][0] if counts else None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value or []]
