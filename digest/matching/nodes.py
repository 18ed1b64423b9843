"""A compiled profile: a tree of AND / OR / NOT over terms, and the terms themselves.

Every node can be evaluated two ways that must agree: `bits(index)` on the day's
paper index (one bitwise operation per node, all papers at once) and `test(doc)` on a
single analysed paper (the naive reference). The property tests hold them together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from digest.matching.model import Hit

FIELDS = ("title", "abstract", "author", "keyword", "category")
TEXT_FIELDS = ("title", "abstract")

# One position of a term: (folded text, is_prefix). A prefix compares with the folded
# word, an exact pattern with the stem (the pattern text is stemmed already).
Pattern = tuple[str, bool]
Form = tuple[Pattern, ...]
# An analysed field: (stems, folded words), position by position; None separates the
# values of a list field (two authors) so that a phrase never spans them.
FieldText = tuple[Sequence[str | None], Sequence[str | None]]
Doc = Mapping[str, FieldText]


class BitIndex(Protocol):
    all_bits: int
    known: dict[str, int]  # term key -> bitset, for the terms evaluated so far

    def term_bits(self, term: Term) -> int: ...


def form_in(form: Form, field: FieldText) -> bool:
    """Whether the token sequence `form` occurs in the field (word by word)."""
    stems, raws = field
    n = len(form)
    for i in range(len(stems) - n + 1):
        for j, (text, prefix) in enumerate(form):
            if prefix:
                raw = raws[i + j]
                if raw is None or not raw.startswith(text):
                    break
            elif stems[i + j] != text:
                break
        else:
            return True
    return False


class Term:
    """A leaf: alternatives (`forms`, from synonyms) searched in some fields."""

    __slots__ = ("label", "fields", "forms", "topic", "key", "hit_of")

    def __init__(
        self, label: str, fields: tuple[str, ...], forms: tuple[Form, ...], topic: str | None
    ) -> None:
        self.label = label
        self.fields = fields
        self.forms = forms
        self.topic = topic
        # What decides which papers match: equal keys, equal bitsets (the cache key).
        self.key = (
            ",".join(fields)
            + "\x1f"
            + "\x1e".join(" ".join(t + ("*" if p else "") for t, p in f) for f in forms)
        )
        # The hit this term makes in each field, made once (terms are shared through
        # the compile caches) rather than once per matched paper.
        self.hit_of = tuple((f, Hit(label, f, topic)) for f in fields)

    def fields_in(self, doc: Doc) -> list[str]:
        return [f for f in self.fields if any(form_in(form, doc[f]) for form in self.forms)]

    def describe(self) -> str:
        alts = " | ".join(" ".join(t + ("*" if p else "") for t, p in f) for f in self.forms)
        where = "/".join(self.fields)
        topic = f" [topic {self.topic}]" if self.topic else ""
        return f"{{{alts}}} in {where}{topic}"


class Node:
    __slots__ = ()

    def bits(self, ix: BitIndex) -> int:
        raise NotImplementedError

    def test(self, doc: Doc) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def leaves(self, negated: bool = False) -> list[tuple[Term, bool]]:
        raise NotImplementedError

    def live_keys(self, doc: Doc) -> set[str] | None:
        """None when this node is not satisfied by `doc`; otherwise the keys of the
        terms that satisfied it: the terms of its satisfied clauses, outside any NOT.
        Only these may score or explain a match (the naive reference)."""
        raise NotImplementedError

    def live_bits(self, ix: BitIndex, ctx: int, out: dict[str, int]) -> None:
        """The same over all papers at once: `ctx` holds the papers where this node
        and every clause above it are satisfied; each term's key gets the papers where
        it is live (or-ed into `out`)."""
        raise NotImplementedError

    def needs_scope(self, under_or: bool) -> bool:
        """Whether a term below can match a paper the profile matched without its own
        clause being satisfied (an AND below an OR); when none can, a term is live
        wherever it matches a matched paper and the index skips `live_bits`."""
        raise NotImplementedError


class Leaf(Node):
    __slots__ = ("term", "key")

    def __init__(self, term: Term) -> None:
        self.term = term
        self.key = term.key

    def bits(self, ix: BitIndex) -> int:
        known = ix.known.get(self.key)
        return ix.term_bits(self.term) if known is None else known

    def test(self, doc: Doc) -> bool:
        return bool(self.term.fields_in(doc))

    def describe(self) -> str:
        return self.term.describe()

    def leaves(self, negated: bool = False) -> list[tuple[Term, bool]]:
        return [(self.term, negated)]

    def live_keys(self, doc: Doc) -> set[str] | None:
        return {self.key} if self.term.fields_in(doc) else None

    def live_bits(self, ix: BitIndex, ctx: int, out: dict[str, int]) -> None:
        out[self.key] = out.get(self.key, 0) | ctx

    def needs_scope(self, under_or: bool) -> bool:
        return False


class Everything(Node):
    """`*`: every paper."""

    __slots__ = ()

    def bits(self, ix: BitIndex) -> int:
        return ix.all_bits

    def test(self, doc: Doc) -> bool:
        return True

    def describe(self) -> str:
        return "* (every paper)"

    def leaves(self, negated: bool = False) -> list[tuple[Term, bool]]:
        return []

    def live_keys(self, doc: Doc) -> set[str] | None:
        return set()

    def live_bits(self, ix: BitIndex, ctx: int, out: dict[str, int]) -> None:
        return None

    def needs_scope(self, under_or: bool) -> bool:
        return False


class Not(Node):
    __slots__ = ("child",)

    def __init__(self, child: Node) -> None:
        self.child = child

    def bits(self, ix: BitIndex) -> int:
        return ix.all_bits & ~self.child.bits(ix)

    def test(self, doc: Doc) -> bool:
        return not self.child.test(doc)

    def describe(self) -> str:
        return f"NOT {self.child.describe()}"

    def leaves(self, negated: bool = False) -> list[tuple[Term, bool]]:
        return self.child.leaves(True)

    def live_keys(self, doc: Doc) -> set[str] | None:
        # An excluded term never explains a match, however many NOTs wrap it.
        return None if self.child.test(doc) else set()

    def live_bits(self, ix: BitIndex, ctx: int, out: dict[str, int]) -> None:
        return None

    def needs_scope(self, under_or: bool) -> bool:
        return False


class And(Node):
    __slots__ = ("children",)

    def __init__(self, children: Sequence[Node]) -> None:
        # Positive children first: a NOT child is then a cheap mask on what is left.
        self.children = tuple(sorted(children, key=lambda c: isinstance(c, Not)))

    def bits(self, ix: BitIndex) -> int:
        first, *rest = self.children
        acc = first.bits(ix)
        for child in rest:
            if not acc:
                return 0
            if type(child) is Not:
                acc &= ~child.child.bits(ix)
            else:
                acc &= child.bits(ix)
        return acc

    def test(self, doc: Doc) -> bool:
        return all(c.test(doc) for c in self.children)

    def describe(self) -> str:
        return "(" + " AND ".join(c.describe() for c in self.children) + ")"

    def leaves(self, negated: bool = False) -> list[tuple[Term, bool]]:
        return [x for c in self.children for x in c.leaves(negated)]

    def live_keys(self, doc: Doc) -> set[str] | None:
        out: set[str] = set()
        for child in self.children:
            keys = child.live_keys(doc)
            if keys is None:
                return None
            out |= keys
        return out

    def live_bits(self, ix: BitIndex, ctx: int, out: dict[str, int]) -> None:
        for child in self.children:  # where the AND holds, every child holds
            child.live_bits(ix, ctx, out)

    def needs_scope(self, under_or: bool) -> bool:
        if under_or and any(not negated for _, negated in self.leaves()):
            return True
        return any(child.needs_scope(under_or) for child in self.children)


class Or(Node):
    __slots__ = ("children",)

    def __init__(self, children: Sequence[Node]) -> None:
        self.children = tuple(children)

    def bits(self, ix: BitIndex) -> int:
        acc = 0
        for child in self.children:
            acc |= child.bits(ix)
        return acc

    def test(self, doc: Doc) -> bool:
        return any(c.test(doc) for c in self.children)

    def describe(self) -> str:
        return "(" + " OR ".join(c.describe() for c in self.children) + ")"

    def leaves(self, negated: bool = False) -> list[tuple[Term, bool]]:
        return [x for c in self.children for x in c.leaves(negated)]

    def live_keys(self, doc: Doc) -> set[str] | None:
        found = [keys for c in self.children if (keys := c.live_keys(doc)) is not None]
        return set().union(*found) if found else None

    def live_bits(self, ix: BitIndex, ctx: int, out: dict[str, int]) -> None:
        for child in self.children:  # a child speaks only where it holds itself
            sub = ctx & child.bits(ix)
            if sub:
                child.live_bits(ix, sub, out)

    def needs_scope(self, under_or: bool) -> bool:
        return any(child.needs_scope(True) for child in self.children)


@dataclass(frozen=True, eq=False)
class Profile:
    """A compiled profile: parse once, evaluate every edition.

    `terms` are the terms outside any NOT, deduplicated, in the order written: a
    matched paper's score and explanation come from those of them that are live in it
    (found in a clause that is itself satisfied, see `Node.live_keys`). `scoped` says
    whether that can differ from "found in it" (an AND below an OR), so the index
    computes liveness only for the profiles that need it.
    """

    text: str
    root: Node
    terms: tuple[Term, ...]
    scoped: bool = False

    @classmethod
    def from_root(cls, text: str, root: Node) -> Profile:
        seen: dict[str, Term] = {}
        for term, negated in root.leaves():
            if not negated and term.key not in seen:
                seen[term.key] = term
        return cls(text, root, tuple(seen.values()), root.needs_scope(False))

    @property
    def everything(self) -> bool:
        return isinstance(self.root, Everything)

    def describe(self) -> str:
        return self.root.describe()
