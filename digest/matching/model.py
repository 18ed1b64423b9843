"""The values matching hands to other stages: hits, matches, limits and weights."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from json import dumps
from json.encoder import encode_basestring_ascii as _quoted  # what json.dumps writes
from typing import Any

from digest.config import Settings

FIELD_PREFIX = {"author": "author:", "category": "cat:"}
# Hits that say why an interest chose a paper (field "interest": a word the paper
# shares with the interest; field "liked": one it shares with the liked paper whose
# title is the hit's `topic`), not where a keyword was found.
SIMILARITY_FIELDS = frozenset({"interest", "liked"})


def _short(title: str | None, limit: int = 80) -> str:
    text = " ".join((title or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Hit:
    """One reason a paper matched: the term as written, the field, the topic if any."""

    term: str
    field: str
    topic: str | None = None

    @cached_property
    def json_text(self) -> str:
        """`json.dumps` of the hit's dict in `Match.to_json`, written once per hit: a
        profile's term makes one Hit per field, shared by every paper it explains.
        Raises TypeError for a hit that is not text (see `Match.json_text`)."""
        return (
            '{"term": '
            + _quoted(self.term)
            + ', "field": '
            + _quoted(self.field)
            + ', "topic": '
            + ("null" if self.topic is None else _quoted(self.topic))
            + "}"
        )


class Match:
    """A paper selected by a profile, with its score and (possibly lazily built) hits.

    The index builds explanations only when someone reads them: at 100,000 subscribers
    most ranked matches are never rendered, so paying for every hit up front would
    dominate the edition's cost.
    """

    __slots__ = ("paper_id", "score", "_hits", "_explain", "_terms", "_at", "_why", "_labels")

    def __init__(
        self,
        paper_id: str,
        score: float,
        hits: list[Hit] | None = None,
        explain: Callable[[], list[Hit]] | None = None,
    ) -> None:
        self.paper_id = paper_id
        self.score = score
        self._hits = hits if hits is not None or explain is not None else []
        self._explain: Any = explain
        self._terms: Any = None
        self._at = 0
        self._why: str | None = None
        self._labels: tuple[str, ...] | None = None

    @classmethod
    def lazy(cls, paper_id: str, score: float, source: Any, terms: Any, at: int) -> Match:
        """A match whose hits are `source.hits(terms, at)`, computed on first read."""
        m = cls.__new__(cls)
        m.paper_id, m.score, m._hits = paper_id, score, None
        m._explain, m._terms, m._at = source, terms, at
        m._why = m._labels = None
        return m

    @property
    def hits(self) -> list[Hit]:
        if self._hits is None:
            if self._terms is not None:
                self._hits = self._explain.hits(self._terms, self._at)
            else:
                self._hits = self._explain() if self._explain else []
            self._explain = self._terms = None
        return self._hits

    @hits.setter
    def hits(self, value: list[Hit]) -> None:
        self._hits, self._explain, self._terms = value, None, None
        self._why = self._labels = None

    def terms(self) -> list[str]:
        """The matched terms as written, each once, in hit order (worked out once: the
        cards, the subject line and the explanation all ask)."""
        return list(self.term_tuple())

    def term_tuple(self) -> tuple[str, ...]:
        """`terms()` as the tuple it is kept as (a card's cache key), not copied."""
        if self._labels is None:
            self._labels = tuple(dict.fromkeys(h.term for h in self.hits))
        return self._labels

    def why(self) -> str:
        """The one-line reason (see `_describe`), worked out once per match: the card
        and the stored explanation both show it."""
        if self._why is None:
            self._why = self._describe()
        return self._why

    def _describe(self) -> str:
        """`matched: diffusion, robot*, topic:robot-learning (manipulation)`, then what an
        interest found: `similar to your interest (reward, preference)`, `like "<title>"
        you liked (dpo)`."""
        plain: list[str] = []
        topics: dict[str, list[str]] = {}
        similar: dict[str, list[str]] = {}  # "interest" or a liked paper's title -> words
        for h in self.hits:
            if h.field in SIMILARITY_FIELDS:
                words = similar.setdefault((h.topic or "") if h.field == "liked" else "", [])
                if h.term and h.term not in words:
                    words.append(h.term)
                continue
            shown = FIELD_PREFIX.get(h.field, "") + h.term
            bucket = topics.setdefault(h.topic, []) if h.topic else plain
            if shown not in bucket:
                bucket.append(shown)
        parts = plain + [f"topic:{name} ({', '.join(terms)})" for name, terms in topics.items()]
        out = ["matched: " + ", ".join(parts)] if parts else []
        for title, words in similar.items():
            said = f'like "{_short(title)}" you liked' if title else "similar to your interest"
            out.append(said + (f" ({', '.join(words)})" if words else ""))
        return "; ".join(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "hits": [{"term": h.term, "field": h.field, "topic": h.topic} for h in self.hits],
            "why": self.why(),
        }

    def json_text(self) -> str:
        """`json.dumps(self.to_json())`, the same text, written without the dicts: an
        edition stores one per matched paper (see `explanations_json`)."""
        try:
            hits = ", ".join([h.json_text for h in self.hits])
            why = _quoted(self.why())
        except TypeError:  # not text (a hit read back from elsewhere): the general way
            return dumps(self.to_json())
        return (
            '{"score": ' + score_json(self.score) + ', "hits": [' + hits + '], "why": ' + why + "}"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return (self.paper_id, self.score, self.hits) == (other.paper_id, other.score, other.hits)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Match({self.paper_id!r}, {self.score!r}, {self.hits!r})"


def score_json(score: float) -> str:
    """`json.dumps(round(score, 4))`, without `round`: a match's stored score. For a
    float below 1e9 the digits `:.4f` gives are round's own (both are the correctly
    rounded decimal), and the shortest text of that decimal (what repr writes for the
    float round returns) is them without trailing zeros; twice as fast, and an edition
    writes one per matched paper. Anything else goes the general way."""
    if type(score) is float and -1e9 < score < 1e9:
        text = f"{score:.4f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    rounded = round(score, 4)
    if type(rounded) is float and math.isfinite(rounded):
        return float.__repr__(rounded)
    return dumps(rounded)


def explanations_json(matches: Sequence[Match]) -> str:
    """A digest's stored explanations as JSON text: exactly
    `json.dumps({m.paper_id: m.to_json() for m in matches})` (what the JSON column
    wrote for the dict, which the web page and `digest explain` read back), in one
    pass with no intermediate dicts: it is built for every digest of an edition."""
    ids = [m.paper_id for m in matches]
    if len(set(ids)) != len(ids) or any(type(i) is not str for i in ids):
        return dumps({m.paper_id: m.to_json() for m in matches})  # the dict's own rules
    return (
        "{"
        + ", ".join([_quoted(i) + ": " + m.json_text() for i, m in zip(ids, matches, strict=True)])
        + "}"
    )


@dataclass(frozen=True)
class Limits:
    max_papers: int = 20
    min_score: float | None = None


@dataclass(frozen=True)
class Weights:
    title: float = 3.0
    abstract: float = 1.0
    author: float = 2.0
    category: float = 1.0
    keyword: float = 1.5
    popularity: float = 1.0
    recency: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> Weights:
        """The operator's weights (`DIGEST_WEIGHT_*`); every stage that ranks uses these."""
        return cls(
            title=settings.weight_title,
            abstract=settings.weight_abstract,
            author=settings.weight_author,
            category=settings.weight_category,
            keyword=settings.weight_keyword,
            popularity=settings.weight_popularity,
            recency=settings.weight_recency,
        )
