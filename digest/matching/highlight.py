"""Which characters of a title or abstract to highlight for a match.

The spans come from the same analysis as matching (folding, stemming, synonyms,
prefixes), so `LLM` highlights "large language models" and `robot*` highlights
"Robotics", and they index the original text, untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.matching.model import Match
from digest.matching.nodes import Form, form_in
from digest.matching.query import label_forms
from digest.matching.text import analyse, stem, words

# Authors looked at for a followed name (the matcher saw them all; a card needs few).
AUTHOR_SCAN = 10_000

_TEXT_FIELDS = {"title", "abstract", "keyword"}


def form_spans(form: Form, found: list[tuple[str, str, int, int]]) -> list[tuple[int, int]]:
    out = []
    n = len(form)
    for i in range(len(found) - n + 1):
        for j, (text, prefix) in enumerate(form):
            raw, stemmed, _, _ = found[i + j]
            if not (raw.startswith(text) if prefix else stemmed == text):
                break
        else:
            out.append((found[i][2], found[i + n - 1][3]))
    return out


def highlight_spans(text: str, match: Match) -> list[tuple[int, int]]:
    """Character spans of `text` that made `match`, sorted and disjoint."""
    labels = list(dict.fromkeys(h.term for h in match.hits if h.field in _TEXT_FIELDS))
    if not labels or not text:
        return []
    found = [(w, stem(w), s, e) for w, s, e in words(text)]
    spans = sorted(
        span for label in labels for form in label_forms(label) for span in form_spans(form, found)
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def matched_authors(authors: Sequence[str], match: Match | None) -> list[int]:
    """Positions in `authors` of the names an `author:` term of `match` found, so a
    card can always show (and mark) the person the subscriber follows, however long
    the list. Compared word by word the way matching compares them (one name at a
    time, never across two)."""
    if match is None:
        return []
    return authors_named(authors, [h.term for h in match.hits if h.field == "author"])


def authors_named(authors: Sequence[str], labels: Sequence[str]) -> list[int]:
    """Positions in `authors` of the names the `author:` terms `labels` find."""
    forms = [form for label in dict.fromkeys(labels) for form in label_forms(label, False)]
    if not forms:
        return []
    found = []
    for i, name in enumerate(authors[:AUTHOR_SCAN]):
        field = analyse(str(name))
        if any(form_in(form, field) for form in forms):
            found.append(i)
    return found
