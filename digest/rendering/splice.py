"""A paper's card rendered once, with holes where each subscriber's highlights go.

What differs between two subscribers' cards of one paper is the reason (`why`) and
which words of the title, author line and summary are marked. So the card templates
(whichever a designer put in `DIGEST_TEMPLATES_DIR`) are rendered once per paper
with markers in those places: each parts list is three marker pieces, the middle one
a hit, which shows what the template writes around a marked piece and whether it
escapes the text. The result is a `CardPattern`: literal text and holes. Filling the
holes with a subscriber's parts is string joining, no template and no tokenising.

A template that does something a pattern cannot express (shows only some parts,
changes their text with a filter, treats a piece by its position) gives no pattern,
or one that fails the check against a direct render with sample values (done for the
first `cards.CARD_CHECKS` papers, and for every paper once a check failed); the card
is then rendered directly, as before. The HTML and text cards are their filled
patterns, framed as a page takes them (`CardPattern.framed`) and sent as they are
with the page (no encoding pass: `encoding.seven_bit`, `encoding.eight_bit`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from markupsafe import escape

from digest.rendering.highlight import Part
from digest.rendering.text import html_escaped as _escaped

# Placeholders never met in real text: every field shown is cleaned of control
# characters first (text.clean), and URLs with them are dropped (text.safe_url).
_MARKER_RE = re.compile("\x00([WTAS])([0-2]?)(<|&lt;)\x00")
PARTS_FIELDS = {"T": "title_parts", "A": "author_parts", "S": "summary_parts"}
WHY = "why"


def _marker(code: str, i: int | str = "") -> str:
    return f"\x00{code}{i}<\x00"


def probe_context(with_why: bool) -> dict[str, object]:
    """The subscriber-dependent values of a card's context, as markers."""
    context: dict[str, object] = {WHY: _marker("W") if with_why else ""}
    for code, name in PARTS_FIELDS.items():
        context[name] = [Part(_marker(code, i), i == 1) for i in range(3)]
    return context


@dataclass(frozen=True)
class Hole:
    """Where a subscriber's value goes: `field` (a context name), whether the
    template escaped it, and what it writes around a marked piece."""

    field: str
    escaped: bool
    hit_open: str = ""
    hit_close: str = ""

    def fill(self, value: str | Sequence[Part] | Marks) -> str:
        if isinstance(value, Marks):  # most: a card's title, authors, summary
            return value.render(self)
        esc = _escaped if self.escaped else _plain
        if isinstance(value, str):
            return esc(value)
        return "".join(
            f"{self.hit_open}{esc(text)}{self.hit_close}" if hit else esc(text)
            for text, hit in value
        )


class Marks:
    """A value that fills a parts hole by itself (faster than a list of parts) and
    gives the same parts for a direct render."""

    def parts(self) -> list[Part]:
        raise NotImplementedError

    def render(self, hole: Hole) -> str:
        raise NotImplementedError


# How long each character markupsafe escapes becomes.
_ESCAPED_LEN = {c: len(escape(c)) for c in "&<>'\""}


class EscapedText:
    """A text with its HTML-escaped form and where each character starts in it, so
    any span is escaped by slicing: marking N words costs N slices, not N escapes."""

    __slots__ = ("text", "html", "_offsets")

    def __init__(self, text: str) -> None:
        self.text = text
        self.html = str(escape(text))
        self._offsets: list[int] | None = None
        if len(self.html) != len(text):
            # each character's escaped length, summed (escaping it alone, per
            # character, cost more than the rest of a paper's card)
            self._offsets = offsets = [0, *accumulate(_ESCAPED_LEN.get(c, 1) for c in text)]
            if offsets[-1] != len(self.html):  # never: an escape this does not know
                self._offsets = offsets = [0]
                for ch in text:
                    offsets.append(offsets[-1] + len(escape(ch)))

    def render(self, spans: Sequence[tuple[int, int]], hole: Hole) -> str:
        """`text` with `spans` (sorted; bad ones skipped, as `parts_at` does) marked
        the way `hole` marks a hit."""
        text = self.text
        out = self.html if hole.escaped else text
        offsets = self._offsets if hole.escaped else None
        pieces: list[str] = []
        pos = 0
        for start, end in spans:
            if start < pos or end > len(text) or start >= end:
                continue
            a, b, c = (offsets[pos], offsets[start], offsets[end]) if offsets else (pos, start, end)
            pieces += (out[a:b], hole.hit_open, out[b:c], hole.hit_close)
            pos = end
        pieces.append(out[offsets[pos] if offsets else pos :])
        return "".join(pieces)


def _plain(text: str) -> str:
    return text


@dataclass(frozen=True)
class CardPattern:
    """A rendered card as literal text and holes."""

    pieces: tuple[str | Hole, ...]
    # `pieces` with "" for each hole, and the holes by position: `fill` copies the
    # one and fills in the others (no test per piece, no generator)
    _texts: list[str] = field(init=False, repr=False, compare=False)
    _holes: tuple[tuple[int, Hole], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        texts = [p if isinstance(p, str) else "" for p in self.pieces]
        holes = tuple((i, p) for i, p in enumerate(self.pieces) if isinstance(p, Hole))
        object.__setattr__(self, "_texts", texts)
        object.__setattr__(self, "_holes", holes)

    def fill(self, values: Mapping[str, str | Sequence[Part] | Marks]) -> str:
        out = self._texts.copy()
        for i, hole in self._holes:
            out[i] = hole.fill(values[hole.field])
        return "".join(out)

    def framed(self, lead: str, strip: str | None) -> CardPattern | None:
        """This pattern as a card is spliced into a page: `lead` + the filled text
        stripped of `strip` + a newline, with the strip done here once; None when an
        end is a hole (the strip could cut into a value: strip after filling)."""
        pieces = list(self.pieces)
        if len(pieces) < 2 or not isinstance(pieces[0], str) or not isinstance(pieces[-1], str):
            return None
        first, last = pieces[0].lstrip(strip), pieces[-1].rstrip(strip)
        if not first or not last:
            return None
        pieces[0], pieces[-1] = lead + first, last + "\n"
        return CardPattern(tuple(pieces))

    @classmethod
    def learn(cls, rendered: str) -> CardPattern | None:
        """The pattern of a card rendered with `probe_context`, or None when the
        template did not write the markers the way a pattern can reproduce."""
        pieces: list[str | Hole] = []
        found = list(_MARKER_RE.finditer(rendered))
        pos = k = 0
        while k < len(found):
            m = found[k]
            code, index, escaped = m.group(1), m.group(2), m.group(3) != "<"
            pieces.append(rendered[pos : m.start()])
            if code == "W" and not index:
                pieces.append(Hole(WHY, escaped))
                pos, k = m.end(), k + 1
                continue
            three = found[k : k + 3]
            if code == "W" or len(three) < 3:
                return None
            if [(t.group(1), t.group(2), t.group(3)) for t in three] != [
                (code, str(i), m.group(3)) for i in range(3)
            ]:
                return None
            hit_open = rendered[three[0].end() : three[1].start()]
            hit_close = rendered[three[1].end() : three[2].start()]
            pieces.append(Hole(PARTS_FIELDS[code], escaped, hit_open, hit_close))
            pos, k = three[2].end(), k + 3
        pieces.append(rendered[pos:])
        if any(isinstance(p, str) and "\x00" in p for p in pieces):
            return None
        return cls(tuple(p for p in pieces if p != ""))


Values = Mapping[str, str | Sequence[Part] | Marks]


class PlainFilled:
    """A paper's (framed) card pattern with every parts hole filled once with the
    paper's unmarked values. Most holes of a new card show the paper unmarked (the
    author line nearly always, the title or summary often: the words a paper was
    matched by are often not in the shown text), so a card fills only its reason and
    the holes of the fields its subscriber's terms mark; the same pieces joined as
    `CardPattern.fill` joins them."""

    __slots__ = ("_texts", "_why", "_holes")

    def __init__(self, pattern: CardPattern, plain: Values) -> None:
        texts = [p if isinstance(p, str) else p.fill(plain[p.field]) for p in pattern.pieces]
        holes = [(i, p) for i, p in enumerate(pattern.pieces) if isinstance(p, Hole)]
        self._texts = texts
        self._why = tuple((i, h.escaped) for i, h in holes if h.field == WHY)
        self._holes = tuple((i, h.field, h) for i, h in holes if h.field != WHY)

    def fill(self, why: str, marks: Mapping[str, Marks]) -> str:
        """The card for reason `why`, with the fields in `marks` (those the terms
        mark) filled from them."""
        out = self._texts.copy()
        for i, escaped in self._why:
            out[i] = _escaped(why) if escaped else why
        if marks:
            for i, name, hole in self._holes:
                value = marks.get(name)
                if value is not None:
                    out[i] = value.render(hole)
        return "".join(out)
