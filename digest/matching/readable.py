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
from digest.matching.highlight import AuthorNames, TextAnalysis
from digest.matching.model import Match

# Characters of a field searched for the words a prefix matched (fields are bounded
# when shown; a hostile abstract must not make a subject expensive).
SCAN = 8000
_TEXT_FIELDS = {"title": ("title",), "abstract": ("abstract",), "keyword": ("ai_keywords",)}


class TermAnalysis(TextAnalysis):
    """The run's `TextAnalysis`, and each author list analysed once (`AuthorNames`)
    for the `author:` terms: analysing every name of a paper again for each subject
    that says "papers by ..." cost more than all other words of the subject."""

    def __init__(self, limit: int = 20_000) -> None:
        super().__init__(limit)
        self._authors: dict[tuple[str, ...], AuthorNames] = {}

    def author_names(self, authors: Sequence[str]) -> AuthorNames:
        key = tuple(authors)
        names = self._authors.get(key)
        if names is None:
            if len(self._authors) >= self.limit:
                self._authors.clear()
            names = self._authors[key] = AuthorNames(key)
        return names


def readable_terms(
    found: Sequence[tuple[Match, Any]], limit: int = 3, analysis: TermAnalysis | None = None
) -> list[str]:
    """The first `limit` distinct things the digest's matches were found by, in
    digest order, as words: `found` is (match, paper) for each item. `analysis` is
    the run's, so a paper's text is analysed once for every digest that shows it.

    A digest looks at ~40 hits to find five words, most of them a plain term (its
    own word), so that case is decided here without a call."""
    analysis = analysis or TermAnalysis()
    catalogue = topic_catalogue.load_catalogue()
    out: dict[str, None] = {}
    prefixes: dict[str, str] = {}  # a prefix term's word is the same for every hit
    for match, paper in found:
        for hit in match.hits:
            term, field = hit.term, hit.field
            topic = catalogue.get(hit.topic or "")
            if topic is not None:  # (a topic since removed from the catalogue: its words)
                word = topic.title
            elif field == "author":
                word = _author_words(term, paper, analysis)
            elif field == "category":
                word = term.rstrip("*").rstrip(".")
            elif "*" in term:
                word = prefixes.get(term) or prefixes.setdefault(
                    term, _most_matched(term, found, analysis) or term.replace("*", "…")
                )
            else:
                word = term
            if word and word not in out:
                out[word] = None
                if len(out) == limit:
                    return list(out)
    return list(out)


def _author_words(term: str, paper: Any, analysis: TermAnalysis) -> str:
    """`papers by <the name the term found>`, as the paper writes it."""
    authors = list(getattr(paper, "authors", None) or [])
    named = [authors[i] for i in analysis.author_names(authors).named([term])]
    return f"papers by {' '.join(str(named[0] if named else term).split())}"


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
