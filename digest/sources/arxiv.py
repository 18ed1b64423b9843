"""`arxiv:CATEGORIES` (e.g. `arxiv:cs.CL+cs.LG`): arXiv's daily listing and export API.

A normal fetch reads the daily RSS listing (`DIGEST_ARXIV_RSS_URL/cs.CL+cs.LG`) with a
conditional GET. Items carry `arxiv:announce_type`: `new` and `cross` are papers;
`replace` and `replace-cross` are revisions, which update a stored paper and are never
counted as new ones. `--since DATE` backfills through the export API
(`DIGEST_ARXIV_API_URL`, Atom), page by page.

Every request goes through one client that keeps `DIGEST_ARXIV_MIN_INTERVAL` seconds
between requests and one connection at a time, as arXiv's terms of use ask.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import quote

from digest.config import Settings
from digest.errors import ConfigError, SourceError
from digest.models import utcnow
from digest.sources.base import (
    MAX_ABSTRACT,
    MAX_TITLE,
    FetchBatch,
    PaperRecord,
    arxiv_abs_url,
    arxiv_pdf_url,
    canonical_arxiv_id,
    clean_text,
    require_some_readable,
)
from digest.sources.feed import (
    cap_entries,
    conditional_headers,
    entry_authors,
    entry_date,
    get_feed,
    parse_feed,
    validators,
)
from digest.sources.http import HttpClient, HttpSession

# cs.CL, hep-th, astro-ph.GA, q-bio.NC, math-ph, physics.atom-ph
_CATEGORY_RE = re.compile(r"^[a-z][a-z-]{0,15}(\.[A-Za-z][A-Za-z-]{0,15})?$")
_ABSTRACT_PREFIX_RE = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*\S+\s*(Abstract:\s*)?", re.IGNORECASE
)
_AUTHOR_SPLIT = r",\s*|\s+and\s+"
NEW_TYPES = frozenset({"new", "cross"})
UPDATE_TYPES = frozenset({"replace", "replace-cross"})
API_PAGE_SIZE = 200
API_MAX_PAGES = 50
# The export API now and then answers a page with no entries although its
# totalResults says more are there (a known quirk of arXiv's search backend); the page
# is asked for again this many times before the backfill is reported short.
API_EMPTY_PAGE_RETRIES = 2


def parse_categories(arg: str) -> list[str]:
    """`cs.CL+cs.LG` -> ['cs.CL', 'cs.LG']; a bad name is a ConfigError."""
    cats = [c.strip() for c in arg.split("+") if c.strip()]
    bad = [c for c in cats if not _CATEGORY_RE.match(c)]
    if not cats or bad:
        raise ConfigError(
            "DIGEST_SOURCES: arxiv:CATEGORIES needs arXiv categories joined by '+', such "
            f"as arxiv:cs.CL+cs.LG; got {arg[:80]!r}"
        )
    return list(dict.fromkeys(cats))


def _categories(entry: Any) -> list[str]:
    terms = [t.get("term") for t in entry.get("tags") or [] if isinstance(t, dict)]
    return [t for t in dict.fromkeys(terms) if isinstance(t, str) and _CATEGORY_RE.match(t)]


def _arxiv_id(entry: Any) -> str:
    for key in ("id", "link"):
        if found := canonical_arxiv_id(entry.get(key)):
            return found
    raise ValueError("no arXiv id in its guid or link")


def record_from_listing_item(entry: Any, source: str) -> PaperRecord:
    """One RSS listing item; revisions become update-only records."""
    arxiv = _arxiv_id(entry)
    title = clean_text(entry.get("title"), MAX_TITLE)
    if not title:
        raise ValueError(f"{arxiv}: no title")
    kind = clean_text(entry.get("arxiv_announce_type") or "new", 30).lower()
    update_only = kind in UPDATE_TYPES
    abstract = _ABSTRACT_PREFIX_RE.sub("", str(entry.get("summary") or ""), count=1)
    return PaperRecord(
        id=arxiv,
        title=title,
        source=source,
        abstract=clean_text(abstract, MAX_ABSTRACT),
        authors=entry_authors(entry, _AUTHOR_SPLIT),
        categories=_categories(entry),
        # A revision's announcement date is not the paper's publication date.
        published=None if update_only else entry_date(entry, "published_parsed"),
        url=arxiv_abs_url(arxiv),
        pdf_url=arxiv_pdf_url(arxiv),
        update_only=update_only,
    )


def record_from_api_entry(entry: Any, source: str) -> PaperRecord:
    """One export-API Atom entry (first-version `published`, `arxiv:primary_category`)."""
    arxiv = _arxiv_id(entry)
    title = clean_text(entry.get("title"), MAX_TITLE)
    if not title:
        raise ValueError(f"{arxiv}: no title")
    primary = entry.get("arxiv_primary_category") or {}
    term = primary.get("term") if isinstance(primary, dict) else None
    return PaperRecord(
        id=arxiv,
        title=title,
        source=source,
        abstract=clean_text(entry.get("summary"), MAX_ABSTRACT),
        authors=entry_authors(entry, ""),
        categories=_categories(entry),
        primary_category=term if isinstance(term, str) and _CATEGORY_RE.match(term) else None,
        published=entry_date(entry, "published_parsed", "updated_parsed"),
        url=arxiv_abs_url(arxiv),
        pdf_url=arxiv_pdf_url(arxiv),
    )


class ArxivSource:
    """One arXiv category set. `today` is injectable so a backfill's range is testable."""

    def __init__(
        self,
        categories: list[str],
        settings: Settings,
        http: HttpClient,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.categories = categories
        self.settings = settings
        self.name = "arxiv:" + "+".join(categories)
        self.rss_url = settings.arxiv_rss_url
        self.api_url = settings.arxiv_api_url
        self.http = http
        self.today = today or (lambda: utcnow().date())

    def fetch(self, cursor: dict[str, Any], since: date | None = None) -> FetchBatch:
        with self.http.session() as session:
            if since is not None:
                return self._backfill(session, cursor, since)
            return self._listing(session, cursor)

    def _listing(self, session: HttpSession, cursor: dict[str, Any]) -> FetchBatch:
        url = f"{self.rss_url}/{quote('+'.join(self.categories), safe='+.-')}"
        resp = get_feed(session, url, self.settings, conditional_headers(cursor))
        if resp.status == 304:
            return FetchBatch(cursor=dict(cursor))
        parsed = parse_feed(resp, url)
        items, cut = cap_entries(parsed.entries, resp, self.settings.max_entries_per_fetch)
        batch = FetchBatch(cursor=validators(resp))
        for n, item in enumerate(items, start=1):
            try:
                batch.records.append(record_from_listing_item(item, self.name))
            except ValueError as exc:
                batch.warnings.append(f"item {n}: {exc}")
        require_some_readable(len(items), batch.warnings, "listing items")
        if cut:
            batch.warnings.insert(0, cut)
        return batch

    def _backfill(self, session: HttpSession, cursor: dict[str, Any], since: date) -> FetchBatch:
        """Page through the export API, newest first, down to `since`. The listing's
        cursor is kept as it was: a backfill does not move the daily position."""
        batch = FetchBatch(cursor=dict(cursor))
        cats = " OR ".join(f"cat:{c}" for c in self.categories)
        query = f"({cats}) AND submittedDate:[{since:%Y%m%d}0000 TO {self.today():%Y%m%d}2359]"
        start = 0
        for _page in range(API_MAX_PAGES):
            parsed = self._api_page(session, query, start)
            entries = parsed.entries
            total = _int(parsed.feed.get("opensearch_totalresults"))
            if not entries and total is not None and start < total:
                batch.warnings.append(
                    f"backfill short: the arXiv API answered empty pages after {start} of "
                    f"{total} entries; run the backfill again later"
                )
                return batch
            problems: list[str] = []
            for n, entry in enumerate(entries, start=start + 1):
                try:
                    record = record_from_api_entry(entry, self.name)
                except ValueError as exc:
                    problems.append(f"entry {n}: {exc}")
                    continue
                if record.published is None or record.published >= since:
                    batch.records.append(record)
            require_some_readable(len(entries), problems, "API entries")
            batch.warnings.extend(problems)
            start += len(entries)
            if not entries or (total is not None and start >= total):
                return batch
        batch.warnings.append(f"backfill stopped after {API_MAX_PAGES} pages ({start} entries)")
        return batch

    def _api_page(self, session: HttpSession, query: str, start: int) -> Any:
        """One export-API page from `start`; an empty page short of the total is asked
        for again (API_EMPTY_PAGE_RETRIES), through the same throttled client."""
        params = {
            "search_query": query,
            "start": str(start),
            "max_results": str(API_PAGE_SIZE),
            "sortBy": "submittedDate",
            "sortOrder": "descending",
        }
        for _try in range(API_EMPTY_PAGE_RETRIES + 1):
            parsed = parse_feed(session.get(self.api_url, params=params), self.api_url)
            _raise_api_error(parsed.entries)
            total = _int(parsed.feed.get("opensearch_totalresults"))
            if parsed.entries or total is None or start >= total:
                break
        return parsed


def _raise_api_error(entries: list[Any]) -> None:
    """The export API reports a bad query as a feed with one `Error` entry."""
    for entry in entries:
        if "/api/errors" in str(entry.get("id", "")):
            message = clean_text(entry.get("summary") or entry.get("title"), 300)
            raise SourceError(f"arXiv API error: {message}")


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def build_arxiv_source(arg: str, settings: Settings, http: HttpClient) -> ArxivSource:
    return ArxivSource(parse_categories(arg), settings, http)
