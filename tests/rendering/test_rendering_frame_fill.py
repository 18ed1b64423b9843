"""`FramePattern.text` fills a page pattern with one escape of all its values and a
join, not a step per piece: the text is the one a piece-by-piece fill gives, for the
patterns of real digests and for hostile values (a NUL in a value, which the
joined escape cannot split on, every character to escape, non-ASCII, CR/LF),
values escaped in some holes only, and patterns with no values or no cards."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from test_rendering import make_settings
from test_rendering_hostile import hostile_papers
from test_rendering_splice import EDITION, realistic_digests

from digest.rendering import make_environment, render_digest
from digest.rendering.frame import CardHole, FramePattern, ValueHole
from digest.rendering.text import html_escaped


def piece_by_piece(pattern: FramePattern, values: Sequence[str], cards: Sequence[str]) -> str:
    """The page as the pattern's pieces say, one at a time (the reference)."""
    out = []
    for piece in pattern.pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif isinstance(piece, CardHole):
            out.append(cards[piece.index])
        else:
            value = values[piece.index]
            out.append(html_escaped(value) if piece.escaped else value)
    return "".join(out)


HOSTILE = [
    "reader@example.org",
    "<script>alert('x')</script> & \"q\"",
    "a\x00b",  # a NUL: the values cannot be escaped joined and split on NULs
    "é · 💥 \u202e \ud800",
    "line\r\nBcc: victim@example.org",
    "",
    "\x00",
]

PATTERNS = [
    FramePattern(("<p>", ValueHole(0, True), "</p>\n", CardHole(0), ValueHole(1, True), "\n")),
    FramePattern((ValueHole(0, True), ValueHole(1, True), CardHole(1), CardHole(0))),
    # escaped in some holes only (a designer's `|safe`), the same value twice
    FramePattern(("<p>", ValueHole(0, False), "|", ValueHole(0, True), ValueHole(1, False))),
    FramePattern(("text ", ValueHole(1, False), " / ", CardHole(0), ValueHole(0, False))),
    FramePattern(("<html>", CardHole(0), "<hr>", CardHole(1), "</html>")),  # no values
    FramePattern(("<p>", ValueHole(0, True), "</p>")),  # no cards
    FramePattern(("only literal text",)),
]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("first", HOSTILE)
def test_fill_equals_a_piece_by_piece_fill(pattern: FramePattern, first: str) -> None:
    cards = ["\n<div>card é</div>\n", "card two\n"]
    for second in HOSTILE:
        values = [first, second]
        assert pattern.text(values, cards) == piece_by_piece(pattern, values, cards)


def test_real_digest_pages_fill_as_piece_by_piece() -> None:
    env = make_environment(make_settings())
    digests = realistic_digests(150, 200, hostile_papers())
    filled = 0
    for i, (addr, items) in enumerate(digests):
        rendered = render_digest(env, env.settings, addr, items, EDITION, f"{i}:x", "p & <b>é</b>")
        assert rendered.html and rendered.text
    for pattern in env.frames.values():
        if pattern is None:
            continue
        n = max((p.index for p in pattern.pieces if isinstance(p, ValueHole)), default=-1) + 1
        m = max((p.index for p in pattern.pieces if isinstance(p, CardHole)), default=-1) + 1
        for values in ([f"v{k} <&> é" for k in range(n)], [HOSTILE[k % 7] for k in range(n)]):
            cards = [f"\n<p>card {k}</p>\n" for k in range(m)]
            assert pattern.text(values, cards) == piece_by_piece(pattern, values, cards)
            filled += 1
    assert filled > 20
