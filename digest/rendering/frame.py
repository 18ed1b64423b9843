"""The page around the cards, rendered once per shape, with holes for what differs
between subscribers.

What two subscribers' pages differ in is a handful of strings (address, profile,
links, topics, preheader) and a few numbers (how many papers, shown, more). The page
templates (whichever a designer put in `DIGEST_TEMPLATES_DIR`) are rendered once per
*shape* — the numbers, which strings are empty, how many topics and cards — with a
marker for each non-empty string and each card; the result is a `FramePattern`.
Filling it for a subscriber is joining strings (`FramePattern.text`), and both
pages are sent as they are (the HTML 7bit, `encoding.seven_bit`; the text 8bit,
`encoding.eight_bit`), so a message costs no template render and no encoding pass.

A pattern is used only after it reproduced a direct render with sample values (long,
full of characters to escape) and, for a template's first shape, with the first
subscriber's values too. A template that changes a string with a filter, or tests its
content, fails that check and the page is rendered directly for that shape, as
before, and every later shape is checked; a template whose first FRAME_CHECKS shapes
passed is trusted, as card templates are after `cards.CARD_CHECKS` papers. A
digest's shape is worked out once for its HTML and text pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from digest.rendering.encoding import references_hold
from digest.rendering.text import html_escaped as _escaped

_MARK_RE = re.compile("\x00(F|C)([0-9]+)(<|&lt;|)\x00")
_SLOT_RE = re.compile("\x00C([0-9]+)\x00")


def card_marker(i: int) -> Markup:
    return Markup(f"\x00C{i}\x00")


_CARD_MARKERS = [card_marker(i) for i in range(600)]


def card_markers(n: int) -> list[Markup]:
    """The markers of `n` card slots (made once: every digest needs them)."""
    return _CARD_MARKERS[:n] if n <= len(_CARD_MARKERS) else [card_marker(i) for i in range(n)]


@dataclass(frozen=True)
class ValueHole:
    index: int
    escaped: bool


@dataclass(frozen=True)
class CardHole:
    index: int


Piece = str | ValueHole | CardHole


class Shape:
    """A page context split into its shape (hashable) and its strings, with a probe
    context in which every non-empty string is a marker. Computed once per digest and
    shared by its HTML and text pages."""

    __slots__ = ("key", "values", "_context")

    def __init__(self, context: Mapping[str, Any]) -> None:
        key: list[Any] = []
        values: list[str] = []
        self._walk_all(context, key, values)
        self.values = values
        self.key = (tuple(context), tuple(key))
        self._context = context

    @staticmethod
    def _walk_all(context: Mapping[str, Any], key: list[Any], values: list[str]) -> None:
        """The key and values of `context`, in the order `probe` numbers its markers;
        a loop per level instead of a call per value (this runs for every digest)."""
        add = key.append
        for value in context.values():
            kind = type(value)
            if kind is str:
                if value:
                    add(1)
                    values.append(value)
                else:
                    add("")
            elif kind is list or kind is tuple or kind is dict:
                Shape._walk_nested(value, key, values)
            elif isinstance(value, Markup):
                add(("M", str(value)))
            elif isinstance(value, str):
                add(1 if value else "")
                if value:
                    values.append(value)
            else:
                add(value)

    @staticmethod
    def _walk_nested(value: Any, key: list[Any], values: list[str]) -> None:
        if isinstance(value, dict):
            key.append(("D", tuple(value)))
            items: Any = value.values()
        else:
            key.append(("L", len(value)))
            items = value
        for item in items:
            kind = type(item)
            if kind is str:
                if item:
                    key.append(1)
                    values.append(item)
                else:
                    key.append("")
            elif kind is Markup:
                key.append(("M", str(item)))
            elif kind is list or kind is tuple or kind is dict:
                Shape._walk_nested(item, key, values)
            else:
                Shape._walk_all({"": item}, key, values)

    @property
    def probe(self) -> dict[str, Any]:
        """The context with each non-empty string a marker (numbered as `values`)."""
        count = iter(range(len(self.values)))
        return {name: _markers(v, count) for name, v in self._context.items()}


def _markers(value: Any, count: Iterator[int]) -> Any:
    if isinstance(value, Markup):  # card markers and other fixed markup
        return value
    if isinstance(value, str):
        return f"\x00F{next(count)}<\x00" if value else ""
    if isinstance(value, (list, tuple)):
        return [_markers(v, count) for v in value]
    if isinstance(value, dict):
        return {k: _markers(v, count) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class FramePattern:
    """A rendered page as literal text and holes."""

    pieces: tuple[Piece, ...]
    # whether character references may stand for its non-ASCII characters (none in a
    # <style>, <script> or comment, and no value or card there): `encoding.seven_bit`
    refs: bool = True
    # how `text` fills it (`_Fill`), worked out once per pattern
    fill: _Fill = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fill", _Fill(self.pieces))

    @classmethod
    def learn(cls, rendered: str) -> FramePattern | None:
        """The pattern of a page rendered with `Shape.probe`."""
        pieces: list[Piece] = []
        pos = 0
        for m in _MARK_RE.finditer(rendered):
            pieces.append(rendered[pos : m.start()])
            kind, index, esc = m.group(1), int(m.group(2)), m.group(3)
            if kind == "C":
                if esc:
                    return None
                pieces.append(CardHole(index))
            else:
                if not esc:
                    return None
                pieces.append(ValueHole(index, esc == "&lt;"))
            pos = m.end()
        pieces.append(rendered[pos:])
        if any(isinstance(p, str) and "\x00" in p for p in pieces):
            return None
        return cls(tuple(p for p in pieces if p != ""), references_hold(rendered))

    def text(self, values: Sequence[str], cards: Sequence[str]) -> str:
        """The page's text, filled with `values` and the cards' texts."""
        fill = self.fill
        if fill.escape is _ALL:
            held = "\x00".join([values[i] for i in fill.values])
            # escaping goes character by character and leaves NUL as it is: the values
            # are escaped at once, unless one holds a NUL itself
            filling = _escaped(held).split("\x00") if fill.values else []
            if len(filling) != len(fill.values):
                filling = [_escaped(values[i]) for i in fill.values]
        elif fill.escape is _NONE:
            filling = [values[i] for i in fill.values]
        else:
            filling = [
                _escaped(values[i]) if esc else values[i]
                for i, esc in zip(fill.values, fill.escaped, strict=True)
            ]
        filling += cards
        out = [""] * (2 * len(fill.literals) - 1)
        out[0::2] = fill.literals
        out[1::2] = [filling[k] for k in fill.holes]
        return "".join(out)


# Which of a pattern's values are escaped.
_NONE, _ALL, _SOME = "none", "all", "some"


class _Fill:
    """A pattern as `FramePattern.text` fills it: the literal text between holes
    (adjacent pieces merged), each hole's place in the filling (value holes first,
    in order, then the cards), and which values are escaped. The page is then one
    escape of all its values (a page's values are mostly links, addresses and
    titles, escaped alike), and slices and a join, not a step per piece."""

    __slots__ = ("literals", "holes", "values", "escaped", "escape")

    def __init__(self, pieces: Sequence[Piece]) -> None:
        self.literals: list[str] = []
        self.values: list[int] = []  # the value index of each value hole, in order
        self.escaped: list[bool] = []
        holes: list[int] = []  # a value hole's place in `values`, or -1 - a card's index
        text = ""
        for piece in pieces:
            if isinstance(piece, str):
                text += piece
                continue
            self.literals.append(text)
            text = ""
            if isinstance(piece, ValueHole):
                holes.append(len(self.values))
                self.values.append(piece.index)
                self.escaped.append(piece.escaped)
            else:
                holes.append(-1 - piece.index)
        self.literals.append(text)
        n = len(self.values)
        self.holes = [h if h >= 0 else n - 1 - h for h in holes]
        self.escape = _ALL if all(self.escaped) else _NONE if not any(self.escaped) else _SOME


def sample_values(values: Sequence[str]) -> list[str]:
    """Values unlike any real one: long, mixed case, with every character to escape."""
    return [f"Sample <b>{i}</b> & \"Quote\" 'x' {'word ' * 30}end{i}" for i in range(len(values))]


# Shapes of a page template whose patterns are checked against direct renders before
# the template is trusted to treat every value the way a pattern does (as for cards:
# a check renders the page once more, and a new shape is learned every few digests).
FRAME_CHECKS = 16


def learn_frame(
    render: Callable[[Mapping[str, Any]], str],
    context: Mapping[str, Any],
    shape: Shape,
    cards: Sequence[str],
    checks: int = 0,
) -> FramePattern | None:
    """The pattern of `render` for this shape, or None when it does not reproduce a
    direct render with sample values and, for the first shape of a template (no
    `checks` passed yet), with the real ones too. A template with FRAME_CHECKS shapes
    checked is trusted: its pattern is learned from one render; a template that
    failed a check has a negative `checks`, and every shape is checked."""
    pattern = FramePattern.learn(render(shape.probe))
    if pattern is None or checks >= FRAME_CHECKS:
        return pattern
    if checks <= 0 and pattern.text(shape.values, cards) != joined(slotted(render(context), cards)):
        return None
    sample = sample_values(shape.values)
    direct = slotted(render(_with_values(shape, sample)), cards)
    if pattern.text(sample, cards) != joined(direct):
        return None
    return pattern


def slotted(page: str, cards: Sequence[str]) -> list[str]:
    """`page` (rendered with `card_marker`s) with each marker replaced by its card."""
    pieces = _SLOT_RE.split(page)
    out: list[str] = [pieces[0]]
    for i in range(1, len(pieces), 2):
        out += (cards[int(pieces[i])], pieces[i + 1])
    return out


def _with_values(shape: Shape, values: Sequence[str]) -> dict[str, Any]:
    """The probe context with `values` in place of the markers."""

    def put(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("\x00F"):
            return values[int(value[2:].split("<")[0])]
        if isinstance(value, list):
            return [put(v) for v in value]
        if isinstance(value, dict):
            return {k: put(v) for k, v in value.items()}
        return value

    return {name: put(v) for name, v in shape.probe.items()}


def joined(pieces: Sequence[str]) -> str:
    return "".join(pieces)
