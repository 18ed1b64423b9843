"""A subscriber's profile as a typed value: what they want, in parts of known kinds.

A `Profile` holds one or more parts and the subscriber's limits (`max_papers`,
`min_score`). Each part has a kind; today there is one, `KeywordQuery`, a query in
the keyword language (`digest.matching.query`). The matcher (`rank`, in `matcher.py`)
hands every part to the ranker registered for its kind, so the callers (pipeline,
previews, `check-query`, the web preview) never look inside a profile.

Two ways to build one, because stored and typed profiles are trusted differently:
- `profile_of(row)`: from a stored subscriber row. Lenient: a profile saved before
  the language grew operators is read the way it was written then, and one with
  nothing searchable matches nothing; an edition never fails on an old profile.
- `profile_from_input(text, ...)`: from what a person just typed. Strict: a query
  that does not parse raises `QueryError` with the position of its cause.

Storage. The profile is derived from the subscriber row; the row is the user
contract (the `keywords` column, the `keywords` JSON field) and stays as it is.
A new kind (a plain-English interest, example papers) is added like this:
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

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Protocol

from digest.matching import nodes
from digest.matching.model import Limits
from digest.matching.query import compile_profile, compile_stored


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
    """The fields of a stored subscriber a profile is derived from."""

    keywords: str
    max_papers: int
    min_score: float | None


def profile_of(row: ProfileRow) -> Profile:
    """A stored subscriber's profile, read leniently (see the module docstring)."""
    return _stored_profile(row.keywords, row.max_papers, row.min_score)


@lru_cache(maxsize=1 << 17)
def _stored_profile(keywords: str, max_papers: int, min_score: float | None) -> Profile:
    """Profiles are immutable, so subscribers who wrote the same profile with the same
    limits share one value: an edition of 100,000 builds far fewer."""
    return Profile((KeywordQuery.stored(keywords),), Limits(max_papers, min_score))


def profile_from_input(
    keywords: str, max_papers: int = Limits.max_papers, min_score: float | None = None
) -> Profile:
    """A profile someone just typed, validated strictly: raises `QueryError`."""
    return Profile((KeywordQuery.parse(keywords),), Limits(max_papers, min_score))
