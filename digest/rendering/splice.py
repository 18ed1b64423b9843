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
is then rendered directly, as before. The HTML card is the filled pattern, sent 7bit
with the page (`CardPattern.framed`); `CardLines` cuts the text card's pattern into
lines and encodes the fixed ones once per paper, so a new text card encodes only its
lines with holes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from markupsafe import escape

from digest.rendering.encoding import Chunk, LineCodec, qp_line
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


class EscapedText:
    """A text with its HTML-escaped form and where each character starts in it, so
    any span is escaped by slicing: marking N words costs N slices, not N escapes."""

    __slots__ = ("text", "html", "_offsets")

    def __init__(self, text: str) -> None:
        self.text = text
        self.html = str(escape(text))
        self._offsets: list[int] | None = None
        if len(self.html) != len(text):
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


# Lines with holes remembered per paper, by the values in them: subscribers with other
# terms often mark the same words of a title or summary.
LINE_MEMORY = 64
# Reason lines remembered for every paper at once (a reason recurs across papers).
SHARED_MEMORY = 20_000


class HoleLine:
    """One line of a card with holes: its pieces, the fields of its holes, and the
    lines it was filled into (text and encoding) by the values' keys. A line whose
    only hole is the reason keeps them in `shared`, the run's memory for every
    paper's such line: a reason recurs across papers and subscribers."""

    __slots__ = ("pieces", "fields", "field", "memory", "shared", "limit", "ident")

    def __init__(
        self, pieces: tuple[str | Hole, ...], shared: dict[object, tuple[str, bytes]] | None
    ) -> None:
        self.pieces = pieces
        self.fields = tuple(p.field for p in pieces if isinstance(p, Hole))
        self.field = self.fields[0] if len(self.fields) == 1 else None  # most lines
        self.shared = shared is not None and self.fields == (WHY,)
        self.memory: dict[object, tuple[str, bytes]] = (
            shared if shared is not None and self.shared else {}
        )
        self.limit = SHARED_MEMORY if self.shared else LINE_MEMORY
        # what tells this line from other papers' lines in `shared` (a string, whose
        # hash Python keeps, unlike the pieces')
        self.ident = repr(pieces) if self.shared else ""

    def filled(
        self, values: Mapping[str, str | Sequence[Part] | Marks], keys: Mapping[str, object]
    ) -> tuple[str, bytes] | None:
        """(text, CRLF + its encoding), or None when a value brought a line break.
        `keys` are what each value's lines depend on (`PaperCard.values_and_keys`)."""
        field = self.field
        key: object = keys[field] if field is not None else tuple([keys[f] for f in self.fields])
        if self.shared:
            key = (self.ident, key)
        memory = self.memory
        known = memory.get(key)
        if known is None:
            text = "".join(
                p if isinstance(p, str) else p.fill(values[p.field]) for p in self.pieces
            )
            if "\n" in text or "\r" in text:
                return None
            if len(memory) >= self.limit:
                memory.clear()
            known = memory[key] = (text, b"\r\n" + qp_line(text))
        return known


class CardLines:
    """A `CardPattern` cut into lines once, as a card is spliced into a page:
    `lead` + the filled text stripped of `strip` + a newline (see `cards.card_chunk`).
    Runs of lines without a hole are quoted-printable encoded here, once per paper,
    and kept as one piece; filling encodes only the lines with a subscriber's value in
    them (`HoleLine`). `compile` gives None when the pattern's ends are holes (the
    strip could cut into a value) or its text has carriage returns; such a card is cut
    into lines after filling, as before."""

    __slots__ = ("head", "body", "fields", "memory")

    def __init__(
        self,
        lines: list[str | tuple[str | Hole, ...]],
        shared: dict[object, tuple[str, bytes]] | None = None,
        codec: LineCodec | None = None,
    ) -> None:
        # the first line is the head: encoded with the page around it; the text ends
        # with a line break (an empty last line)
        first = lines[0]
        self.head: str | HoleLine = first if isinstance(first, str) else HoleLine(first, shared)
        self.body: list[tuple[str, bytes] | HoleLine] = []
        texts: list[str] = []
        encoded: list[bytes] = []
        encode = codec.line if codec is not None else qp_line  # lines papers share
        for line in [*lines[1:], ""]:
            if isinstance(line, str):
                texts.append(line)
                encoded.append(b"\r\n" + encode(line))
                continue
            if texts:
                self.body.append(("\n".join(texts), b"".join(encoded)))
                texts, encoded = [], []
            self.body.append(HoleLine(line, shared))
        self.body.append(("\n".join(texts), b"".join(encoded)))
        # the fields the filled card depends on, and the cards filled by their keys (a
        # text card shows no highlights: subscribers with the same reason share it)
        holes = [self.head, *self.body]
        self.fields = tuple(
            dict.fromkeys(f for h in holes if isinstance(h, HoleLine) for f in h.fields)
        )
        self.memory: dict[tuple[object, ...], Chunk | None] = {}

    @classmethod
    def compile(
        cls,
        pattern: CardPattern,
        lead: str,
        strip: str | None,
        shared: dict[object, tuple[str, bytes]] | None = None,
        codec: LineCodec | None = None,
    ) -> CardLines | None:
        framed = pattern.framed(lead, strip)
        if framed is None:
            return None
        pieces = framed.pieces
        if any(isinstance(p, str) and "\r" in p for p in pieces):
            return None
        lines: list[list[str | Hole]] = [[]]
        for piece in pieces:
            if isinstance(piece, Hole):
                lines[-1].append(piece)
                continue
            head, *rest = piece.split("\n")
            if head:
                lines[-1].append(head)
            lines += [[part] if part else [] for part in rest]
        if lines[-1]:  # the text ends with its newline: the last line is empty
            return None
        return cls(
            [
                "".join(p for p in line if isinstance(p, str))
                if all(isinstance(p, str) for p in line)
                else tuple(line)
                for line in lines[:-1]
            ],
            shared,
            codec,
        )

    def fill(
        self, values: Mapping[str, str | Sequence[Part] | Marks], keys: Mapping[str, object]
    ) -> Chunk | None:
        """The filled card as a `Chunk` (head: its first line; mid: the rest encoded),
        or None when a value brought a line break (then it is cut after filling).
        `keys`: what each value's lines depend on, shared by a card's HTML and text."""
        key = tuple([keys[f] for f in self.fields])
        memory = self.memory
        if key in memory:
            return memory[key]
        if len(memory) >= LINE_MEMORY:
            memory.clear()
        chunk = memory[key] = self._fill(values, keys)
        return chunk

    def _fill(
        self, values: Mapping[str, str | Sequence[Part] | Marks], keys: Mapping[str, object]
    ) -> Chunk | None:
        head = self.head
        if isinstance(head, str):
            first = head
        else:
            got = head.filled(values, keys)
            if got is None:
                return None
            first = got[0]
        lines = [
            piece.filled(values, keys) if isinstance(piece, HoleLine) else piece
            for piece in self.body
        ]
        if None in lines:
            return None
        texts, encoded = zip(*lines, strict=True)
        return Chunk("\n".join((first, *texts)), first, b"".join(encoded), "")
