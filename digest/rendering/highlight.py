"""Matched terms marked in a text. The text is split into (piece, is_match) parts so
the card template itself writes the `<mark>` element: its CSS gets inlined with the
template and autoescaping covers every piece."""

from __future__ import annotations

from typing import NamedTuple

from markupsafe import Markup, escape

from digest.matching import Match, highlight_spans


class Part(NamedTuple):
    text: str
    hit: bool


def highlight_parts(text: str, match: Match | None) -> list[Part]:
    """`text` cut at the spans `digest.matching.highlight_spans` reports; spans
    outside the text, empty or overlapping are ignored."""
    if match is None or not match.hits or not text:
        return [Part(text, False)] if text else []
    parts: list[Part] = []
    pos = 0
    for start, end in highlight_spans(text, match):
        if start < pos or end > len(text) or start >= end:
            continue
        if start > pos:
            parts.append(Part(text[pos:start], False))
        parts.append(Part(text[start:end], True))
        pos = end
    if pos < len(text):
        parts.append(Part(text[pos:], False))
    return parts


def highlight(text: str, match: Match | None) -> Markup:
    """The same as HTML with `<mark>` around matches, for code outside templates."""
    return Markup("").join(
        Markup("<mark>%s</mark>") % p.text if p.hit else escape(p.text)
        for p in highlight_parts(text, match)
    )
