"""The live preview on the sign-up and manage pages: which of the last days' papers a
profile would have matched, so a person can tune it before subscribing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from digest import store
from digest.config import Settings
from digest.errors import InputError, QueryError
from digest.matching import Weights, profile_from_input, query_warnings, rank
from digest.models import Paper
from digest.preview import preview_papers
from digest.store import Engine

PREVIEW_DAYS = 7
MAX_SHOWN = 50


def recent_papers(engine: Engine, today: date | None = None) -> list[Paper]:
    """Papers of the last week; the bundled sample when nothing is stored yet."""
    since = (today or date.today()) - timedelta(days=PREVIEW_DAYS)
    return store.list_papers(engine, since=since, limit=1000) or preview_papers(engine)


def _safe_url(paper: Paper) -> str | None:
    for url in (paper.hf_url, paper.url):
        if url and url.startswith(("https://", "http://")):
            return url
    return None


def preview(engine: Engine, settings: Settings, profile: str, max_papers: int) -> dict[str, Any]:
    """The matches as JSON-ready data; a bad profile raises InputError/QueryError."""
    wanted = profile_from_input(profile)
    papers = recent_papers(engine)
    # every paper it would select, so `matched` counts them all; the list shows a few
    wanted = wanted.with_limits(len(papers) or 1)
    matches = rank({0: wanted}, papers, Weights.from_settings(settings))[0]
    by_id = {p.id: p for p in papers}
    shown = matches[: min(max_papers, MAX_SHOWN)]
    return {
        "ok": True,
        "days": PREVIEW_DAYS,
        "considered": len(papers),
        "matched": len(matches),
        "warnings": query_warnings(profile),  # shown above the list: likely slips
        "papers": [
            {
                "id": m.paper_id,
                "title": by_id[m.paper_id].title,
                "url": _safe_url(by_id[m.paper_id]),
                "why": m.why(),
                "score": round(m.score, 3),
            }
            for m in shown
            if m.paper_id in by_id
        ],
    }


def error_json(exc: InputError) -> dict[str, Any]:
    position = exc.position if isinstance(exc, QueryError) else None
    message = exc.args[0] if exc.args else str(exc)
    return {"ok": False, "error": str(message), "position": position}
