"""Core records shared by the stages: a paper as a source saw it, and the arXiv id
every source keys papers by. No imports from any stage, so the store and the sources
can both depend on it without depending on each other."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

# Modern (2401.06102) and old-style (hep-th/9901001, math.AG/0309136) arXiv ids.
_ARXIV_CORE = r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[a-z]{2})?/\d{7})(?:v\d+)?"
_ARXIV_BARE_RE = re.compile(rf"(?:arxiv:)?{_ARXIV_CORE}", re.IGNORECASE)
# ...and arXiv's own DOIs (10.48550/arXiv.2401.06102, modern ids only), which
# journals and Crossref-fed feeds link to instead of arxiv.org.
_ARXIV_IN_TEXT_RE = re.compile(
    rf"(?:arxiv\.org/(?:abs|pdf|html)/|oai:arxiv\.org:|arxiv:|10\.48550/arxiv\.)"
    rf"{_ARXIV_CORE}(?![\d/])",
    re.IGNORECASE,
)
MAX_URL = 2000


def canonical_arxiv_id(value: Any) -> str | None:
    """The arXiv id without its version (`2401.06102v2` -> `2401.06102`), found in a bare
    id, an `arXiv:` id, an abs/pdf URL or an OAI identifier; None when there is none.

    Every source keys papers by this, so one paper seen by two sources is one row.
    """
    if not isinstance(value, str) or len(value) > MAX_URL:
        return None
    text = value.strip()
    match = _ARXIV_BARE_RE.fullmatch(text) or _ARXIV_IN_TEXT_RE.search(text)
    return match.group("id") if match else None


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
