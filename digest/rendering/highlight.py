"""Matched terms marked in a text. The text is split into (piece, is_match) parts so
the card template itself writes the `<mark>` element: its CSS gets inlined with the
template and autoescaping covers every piece."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

from markupsafe import Markup, escape

from digest.matching import Match, highlight_spans, matched_authors
from digest.rendering.text import AUTHOR_NAME_LIMIT, clean, shorten

# At most this many followed authors are pulled forward out of a long list.
MAX_MARKED_AUTHORS = 3


class Part(NamedTuple):
    text: str
    hit: bool


def highlight_parts(text: str, match: Match | None) -> list[Part]:
    """`text` cut at the spans `digest.matching.highlight_spans` reports."""
    if match is None or not match.hits or not text:
        return [Part(text, False)] if text else []
    return parts_at(text, highlight_spans(text, match))


def parts_at(text: str, spans: Sequence[tuple[int, int]]) -> list[Part]:
    """`text` cut at `spans` (sorted); spans outside the text, empty or overlapping
    are ignored."""
    if not text:
        return []
    parts: list[Part] = []
    pos = 0
    for start, end in spans:
        if start < pos or end > len(text) or start >= end:
            continue
        if start > pos:
            parts.append(Part(text[pos:start], False))
        parts.append(Part(text[start:end], True))
        pos = end
    if pos < len(text):
        parts.append(Part(text[pos:], False))
    return parts


def author_parts(
    authors: Sequence[str], match: Match | None, keep: int = 3, total_limit: int = 5
) -> list[Part]:
    """The author line as parts, the names an `author:` term matched marked: the whole
    list up to `total_limit` names, else the first `keep` and every matched name
    wherever it stands, the gaps shown as `...` and the rest counted, e.g.
    `Mido Assran, Adrien Bardes, David Fan ... Yann LeCun, +25`. Without a matched
    author beyond the first names it reads as before: `A, B, C ... +12`."""
    marked = set(matched_authors(authors, match)) if match is not None else set()
    return author_parts_marked(authors, marked, keep, total_limit)


def author_parts_marked(
    authors: Sequence[str], marked: Collection[int], keep: int = 3, total_limit: int = 5
) -> list[Part]:
    """`author_parts` with the matched positions already known."""
    if len(authors) <= total_limit:
        shown = list(range(len(authors)))
    else:
        pulled = sorted(i for i in marked if i >= keep)[:MAX_MARKED_AUTHORS]
        shown = [*range(min(keep, len(authors))), *pulled]
    parts: list[Part] = []
    last = -1
    for i in shown:
        name = shorten(clean(str(authors[i]), AUTHOR_NAME_LIMIT * 2), AUTHOR_NAME_LIMIT)
        if not name:
            continue
        if parts:
            parts.append(Part(", " if i == last + 1 else " ... ", False))
        parts.append(Part(name, i in marked))
        last = i
    hidden = len(authors) - len(shown)
    if hidden > 0 and parts:
        parts.append(Part(f", +{hidden}" if last == len(authors) - 1 else f" ... +{hidden}", False))
    return parts


def highlight(text: str, match: Match | None) -> Markup:
    """The same as HTML with `<mark>` around matches, for code outside templates."""
    return Markup("").join(
        Markup("<mark>%s</mark>") % p.text if p.hit else escape(p.text)
        for p in highlight_parts(text, match)
    )
