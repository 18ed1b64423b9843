"""The one narrow interface every paper source implements, and the record it yields.

A source turns some remote listing into `PaperRecord`s; it never touches the database.
The store merges records into papers, so adding a source is one file.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

MAX_TITLE = 1000
MAX_ABSTRACT = 20000
MAX_AUTHORS = 500

_TAG_RE = re.compile(r"<[^>]{0,2000}>")
_WS_RE = re.compile(r"\s+")


def clean_text(value: Any, limit: int, markup: bool = True) -> str:
    """Fold whitespace (CR/LF included), decode entities, drop markup, cap the length.

    `markup=False` is for sources whose fields are plain text (JSON Lines): there a
    `<script>` in a title is text, kept as written and escaped when rendered.
    LaTeX like `$\\alpha$` is left as written: the renderer makes it readable.
    """
    if value is None:
        return ""
    text = str(value)
    text = unicodedata.normalize("NFC", text)
    if markup:
        text = html.unescape(_TAG_RE.sub(" ", text))
    text = "".join(ch if ch.isprintable() or ch.isspace() else " " for ch in text)
    text = _WS_RE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def clean_list(values: Any, limit: int, item_limit: int = 300) -> list[str]:
    """A cleaned list of short strings (authors, categories), empty items dropped."""
    if not isinstance(values, list | tuple):
        return []
    out = []
    for v in values[:limit]:
        s = clean_text(v, item_limit)
        if s:
            out.append(s)
    return out


@dataclass
class PaperRecord:
    """One paper as one source saw it. Only `id` and `title` are required."""

    id: str
    title: str
    source: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    primary_category: str | None = None
    published: date | None = None
    url: str | None = None
    pdf_url: str | None = None
    code_url: str | None = None
    project_url: str | None = None
    hf_url: str | None = None
    upvotes: int | None = None
    github_stars: int | None = None
    num_comments: int | None = None
    thumbnail: str | None = None
    ai_summary: str | None = None
    ai_keywords: list[str] = field(default_factory=list)
    # True for arXiv `replace` announcements: update a known paper, never a new one.
    update_only: bool = False


@dataclass
class FetchBatch:
    """What one fetch returned: records, problems met on the way, and where to resume."""

    records: list[PaperRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cursor: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """A paper source. `name` is stable: it keys the source's saved cursor."""

    name: str

    def fetch(self, cursor: dict[str, Any], since: date | None = None) -> FetchBatch:
        """Return the records newer than `cursor` (or since `since`, to backfill).

        Raise `digest.errors.SourceError` when the source cannot deliver at all.
        """
        ...
