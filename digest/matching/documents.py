"""A paper as matching sees it: each field analysed once into stems and folded words.

List fields (authors, Hugging Face keywords) keep a `None` between values, so that a
phrase never runs from one author's name into the next.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from digest.matching.nodes import Doc, FieldText
from digest.matching.text import analyse


def _joined(values: Iterable[str]) -> FieldText:
    stems: list[str | None] = []
    raws: list[str | None] = []
    for value in values:
        s, r = analyse(str(value))
        if not s:
            continue
        if stems:
            stems.append(None)
            raws.append(None)
        stems.extend(s)
        raws.extend(r)
    return stems, raws


def analyse_paper(paper: Any) -> Doc:
    cats = [str(c).strip().lower() for c in (getattr(paper, "categories", None) or [])]
    cats = [c for c in cats if c]
    return {
        "title": analyse(getattr(paper, "title", "") or ""),
        "abstract": analyse(getattr(paper, "abstract", "") or ""),
        "author": _joined(getattr(paper, "authors", None) or []),
        "keyword": _joined(getattr(paper, "ai_keywords", None) or []),
        "category": (cats, cats),
    }
