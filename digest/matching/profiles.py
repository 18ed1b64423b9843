"""A subscriber's profile as a typed value: what they want, in parts of known kinds.

A `Profile` holds one or more parts and the subscriber's limits (`max_papers`,
`min_score`). Each part has a kind: `KeywordQuery`, a query in the keyword language
(`digest.matching.query`), and `Interest` (`interest.py`), a plain-English interest
with example papers liked and disliked. A profile has either or both (then the
query's matches are re-ranked by the interest, `fusion.py`). The matcher (`rank`, in `matcher.py`)
hands every part to the ranker registered for its kind, so the callers (pipeline,
previews, `check-query`, the web preview) never look inside a profile.

Two ways to build one, because stored and typed profiles are trusted differently:
- `profile_of(row)`: from a stored subscriber row. Lenient: a profile saved before
  the language grew operators is read the way it was written then, and one with
  nothing searchable matches nothing; an edition never fails on an old profile.
- `profile_from_input(text, ...)`: from what a person just typed. Strict: a query
  that does not parse raises `QueryError` with the position of its cause.

Storage. The profile is derived from the subscriber row; the row is the user
contract (the `keywords`, `interest` and `likes` columns and JSON fields). An
interest-only subscriber stores `keywords = ""`. Ratings kept elsewhere (the
"more/less like this" links) join the profile as extra example ids:
`profile_of(row, liked=(...), disliked=(...))`; the interest's stored embedding as
`vector=` (computed once, when the profile was saved).
A new kind is added like this (as `Interest` was):
1. a frozen dataclass part here (`Interest(text)`, `ExamplePapers(ids)`) with a
   `kind` name and a `describe()`;
2. its storage: a new nullable column on `subscriber` (`interest TEXT NULL`) or a
   table of its own (`liked_paper(subscriber_id, paper_id)`), added by a migration,
   so existing rows keep meaning exactly what they meant;
3. `profile_of` adds the part when the row has it (and `profile_from_input` validates
   it from a form or a command line);
4. its ranker (a module beside `keywords.py`) registered in `matcher.RANKERS`, and, for
   a profile with several parts, the rule that fuses their rankings in `matcher.py`.
No caller changes: they pass `Profile` values and read `Match` lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar, Protocol

from digest.matching import nodes
from digest.matching.interest import Interest
from digest.matching.model import Limits
from digest.matching.query import PROFILES_KEPT, compile_profile, compile_stored

if TYPE_CHECKING:  # annotations only: checking a profile needs no numpy
    import numpy as np


class ProfilePart(Protocol):
    """One part of a profile; `kind` names it in errors and in the ranker registry."""

    kind: ClassVar[str]

    def describe(self) -> str: ...


@dataclass(frozen=True)
class KeywordQuery:
    """A query in the keyword language, as written and as compiled.

    `text` is what the subscriber wrote; `query` is its compiled tree (shared through
    the compile cache by every subscriber who wrote the same text). Build it with
    `parse` (strict) or `stored` (lenient), not by hand.
    """

    kind: ClassVar[str] = "keywords"
    text: str
    query: nodes.Profile

    @classmethod
    def parse(cls, text: str) -> KeywordQuery:
        """From user input: raises `QueryError` (with a position) if it does not parse."""
        return cls(text, compile_profile(text))

    @classmethod
    def stored(cls, text: str) -> KeywordQuery:
        """From a stored profile: never raises (see `compile_stored`)."""
        return cls(text, compile_stored(text))

    def describe(self) -> str:
        return self.query.describe()


@dataclass(frozen=True)
class Profile:
    """What one subscriber wants: one or more parts, and how many papers, how good."""

    parts: tuple[ProfilePart, ...]
    limits: Limits = Limits()

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a profile needs at least one part")

    def with_limits(self, max_papers: int, min_score: float | None = None) -> Profile:
        """The same parts with other limits (a preview lists every paper it would pick)."""
        return Profile(self.parts, Limits(max_papers, min_score))

    def describe(self) -> str:
        """How the profile is understood, part by part (what `check-query` prints)."""
        return "; ".join(part.describe() for part in self.parts)


class ProfileRow(Protocol):
    """The fields of a stored subscriber a profile is derived from (`interest` and
    `likes` are read with getattr: a row from before they existed has neither)."""

    keywords: str
    max_papers: int
    min_score: float | None


def profile_of(
    row: ProfileRow,
    liked: Sequence[str] = (),
    disliked: Sequence[str] = (),
    vector: np.ndarray | None = None,
) -> Profile:
    """A stored subscriber's profile, read leniently (see the module docstring).

    `liked` / `disliked`: example paper ids from outside the row (ratings), added to
    the row's own `likes`; `vector`: the stored embedding of the interest's topic."""
    interest = getattr(row, "interest", None) or ""
    likes = tuple(getattr(row, "likes", None) or ()) + tuple(liked)
    if vector is not None:
        return _build(
            row.keywords, interest, likes, tuple(disliked), row.max_papers, row.min_score, vector
        )
    return _stored_profile(
        row.keywords, interest, likes, tuple(disliked), row.max_papers, row.min_score
    )


@lru_cache(maxsize=PROFILES_KEPT)
def _stored_profile(
    keywords: str,
    interest: str,
    liked: tuple[str, ...],
    disliked: tuple[str, ...],
    max_papers: int,
    min_score: float | None,
) -> Profile:
    """Profiles are immutable, so subscribers who wrote the same profile with the same
    limits share one value: an edition of 100,000 builds far fewer."""
    return _build(keywords, interest, liked, disliked, max_papers, min_score, None)


def _build(
    keywords: str,
    interest: str,
    liked: tuple[str, ...],
    disliked: tuple[str, ...],
    max_papers: int,
    min_score: float | None,
    vector: np.ndarray | None,
) -> Profile:
    parts: list[ProfilePart] = []
    has_keywords = bool(keywords.strip())
    if has_keywords:
        parts.append(KeywordQuery.stored(keywords))
    if interest.strip() or liked or (disliked and has_keywords):
        parts.append(Interest.of(interest, liked, disliked, vector))
    if not parts:  # nothing searchable: matches nothing, as an empty query always did
        parts.append(KeywordQuery.stored(keywords))
    return Profile(tuple(parts), Limits(max_papers, min_score))


def profile_from_input(
    keywords: str | None,
    max_papers: int = Limits.max_papers,
    min_score: float | None = None,
    interest: str | None = None,
    liked: Sequence[str] = (),
) -> Profile:
    """A profile someone just typed, validated strictly: raises `QueryError` for a bad
    query, ValueError when there is nothing at all (no query, interest or example)."""
    parts: list[ProfilePart] = []
    wants = bool((interest or "").strip() or liked)
    if keywords is not None and (keywords.strip() or not wants):
        parts.append(KeywordQuery.parse(keywords))  # an empty query alone: its QueryError
    if wants:
        parts.append(Interest.of(interest, tuple(liked)))
    if not parts:
        raise ValueError("give keywords, an interest or example papers")
    return Profile(tuple(parts), Limits(max_papers, min_score))
