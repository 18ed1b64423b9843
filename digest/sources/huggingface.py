"""`huggingface`: Hugging Face Daily Papers (`/api/daily_papers?date=YYYY-MM-DD`).

Keeps what only Hugging Face knows: upvotes, comments, the AI summary and keywords,
the GitHub repository (and its stars), the project page and the thumbnail. Papers are
keyed by their arXiv id, so they merge with the same paper from `arxiv:`.

Incremental: the cursor holds the last day read. The next fetch reads that day again
(it fills up during the day, and upvotes move) and every day since, so an hourly cron
misses nothing across midnight. A first fetch reads yesterday and today.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from digest.config import Settings
from digest.errors import SourceError
from digest.models import utcnow
from digest.sources.base import (
    MAX_ABSTRACT,
    MAX_AUTHORS,
    MAX_TITLE,
    FetchBatch,
    PaperRecord,
    arxiv_abs_url,
    arxiv_pdf_url,
    canonical_arxiv_id,
    clean_date,
    clean_int,
    clean_list,
    clean_text,
    clean_url,
    require_some_readable,
)
from digest.sources.http import HttpClient, HttpSession

PAGE_SIZE = 100
MAX_PAGES_PER_DAY = 20
MAX_BACKFILL_DAYS = 92
NAME = "huggingface"


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def record_from_item(item: Any, hf_base: str) -> PaperRecord:
    """One daily-papers item (`{"paper": {...}, "numComments": ..., ...}`)."""
    if not isinstance(item, dict) or not isinstance(item.get("paper"), dict):
        raise ValueError("item has no 'paper' object")
    paper = item["paper"]
    raw_id = paper.get("id")
    if not raw_id:
        raise ValueError("paper has no 'id'")
    arxiv = canonical_arxiv_id(raw_id)
    if not arxiv:
        raise ValueError(f"paper id {clean_text(raw_id, 40)!r} is not an arXiv id")
    title = clean_text(paper.get("title") or item.get("title"), MAX_TITLE)
    if not title:
        raise ValueError(f"{arxiv}: no title")
    authors = paper.get("authors")
    names = (
        [a.get("name") for a in authors if isinstance(a, dict)] if isinstance(authors, list) else []
    )
    return PaperRecord(
        id=arxiv,
        title=title,
        source=NAME,
        abstract=clean_text(paper.get("summary") or item.get("summary"), MAX_ABSTRACT),
        authors=clean_list(names, MAX_AUTHORS),
        published=clean_date(_day(paper.get("publishedAt"))),
        url=arxiv_abs_url(arxiv),
        pdf_url=arxiv_pdf_url(arxiv),
        code_url=clean_url(paper.get("githubRepo")),
        project_url=clean_url(paper.get("projectPage")),
        hf_url=f"{hf_base}/papers/{arxiv}",
        upvotes=clean_int(paper.get("upvotes")),
        github_stars=clean_int(paper.get("githubStars")),
        num_comments=clean_int(item.get("numComments")),
        thumbnail=clean_url(item.get("thumbnail")),
        ai_summary=clean_text(paper.get("ai_summary"), 5000) or None,
        ai_keywords=clean_list(paper.get("ai_keywords"), 50, 100),
    )


class HuggingFaceSource:
    """Daily Papers. `today` is injectable so the day range is testable."""

    name = NAME

    def __init__(
        self, settings: Settings, http: HttpClient, today: Callable[[], date] | None = None
    ) -> None:
        self.base = settings.huggingface_url
        self.http = http
        self.today = today or (lambda: utcnow().date())

    def days(
        self, cursor: dict[str, Any], since: date | None, today: date
    ) -> tuple[list[date], list[str]]:
        """The days to read, oldest first, and a note when a backfill was cut short."""
        start = since or _day(cursor.get("last_date")) or today - timedelta(days=1)
        start = min(start, today) if since is None else start
        notes = []
        if (today - start).days >= MAX_BACKFILL_DAYS:
            start = today - timedelta(days=MAX_BACKFILL_DAYS - 1)
            notes.append(f"read only the last {MAX_BACKFILL_DAYS} days (from {start})")
        count = (today - start).days + 1
        return [start + timedelta(days=i) for i in range(max(0, count))], notes

    def fetch(self, cursor: dict[str, Any], since: date | None = None) -> FetchBatch:
        today = self.today()  # once: the cursor must be the last day actually read
        days, notes = self.days(cursor, since, today)
        batch = FetchBatch(warnings=notes, cursor={"last_date": today.isoformat()})
        with self.http.session() as session:
            for day in days:
                self._read_day(session, day, batch)
        return batch

    def _read_day(self, session: HttpSession, day: date, batch: FetchBatch) -> None:
        url = f"{self.base}/api/daily_papers"
        for page in range(MAX_PAGES_PER_DAY):
            params = {"date": day.isoformat(), "limit": str(PAGE_SIZE), "p": str(page)}
            items = _json_list(session.get(url, params=params).content, url)
            problems: list[str] = []
            for n, item in enumerate(items, start=1):
                try:
                    batch.records.append(record_from_item(item, self.base))
                except ValueError as exc:
                    problems.append(f"{day} item {page * PAGE_SIZE + n}: {exc}")
            require_some_readable(len(items), problems, f"items for {day}")
            batch.warnings.extend(problems)
            if len(items) < PAGE_SIZE:
                return
        batch.warnings.append(f"{day}: stopped after {MAX_PAGES_PER_DAY} pages")


def _json_list(content: bytes, url: str) -> list[Any]:
    try:
        data = json.loads(content.decode("utf-8"))
    # ValueError: undecodable bytes, bad JSON, or a number past Python's digit limit;
    # RecursionError: arrays nested beyond the parser's depth.
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"malformed JSON from {url}: {str(exc)[:200]}") from None
    if not isinstance(data, list):
        raise SourceError(f"unexpected JSON from {url}: expected a list, got {type(data).__name__}")
    return data


def build_huggingface_source(settings: Settings, http: HttpClient) -> HuggingFaceSource:
    return HuggingFaceSource(settings, http)
