"""Which characters of a title or abstract to highlight for a match.

The spans come from the same analysis as matching (folding, stemming, synonyms,
prefixes), so `LLM` highlights "large language models" and `robot*` highlights
"Robotics", and they index the original text, untouched.
"""

from __future__ import annotations

from digest.matching.model import Match
from digest.matching.nodes import Form
from digest.matching.query import label_forms
from digest.matching.text import stem, words

_TEXT_FIELDS = {"title", "abstract", "keyword"}


def _spans_of(form: Form, found: list[tuple[str, str, int, int]]) -> list[tuple[int, int]]:
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
        span for label in labels for form in label_forms(label) for span in _spans_of(form, found)
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
