"""`feed:URL`: any RSS or Atom feed (bioRxiv, a journal, a lab blog) through feedparser.

Entries are keyed by the arXiv id their id or link points to (so a journal's entry for
an arXiv preprint merges with it), else by a DOI, else by the entry id or link itself.
The feed is fetched with a conditional GET, so an unchanged feed costs one 304.

Malformed XML fails the fetch rather than feeding a half-parsed entry to the store:
feedparser's lenient fallback would happily return a truncated abstract.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from datetime import UTC, date, datetime
from typing import Any

import feedparser

from digest.config import Settings
from digest.errors import ConfigError, SourceError
from digest.sources.base import (
    MAX_ABSTRACT,
    MAX_AUTHORS,
    MAX_TITLE,
    FetchBatch,
    PaperRecord,
    arxiv_abs_url,
    arxiv_pdf_url,
    canonical_arxiv_id,
    clean_list,
    clean_text,
    clean_url,
    require_some_readable,
)
from digest.sources.http import HttpClient, Response

MAX_FEED_URL = 450  # the source name keys SourceState (500 characters)
MAX_ID = 200
_BENIGN_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s?#&\"'<>]+)", re.IGNORECASE)
_SAFE_ID_RE = re.compile(r"^[\x21-\x7e]+$")


def parse_feed(resp: Response, what: str) -> Any:
    """Parse an RSS/Atom body strictly: a well-formedness error is a SourceError."""
    parsed = feedparser.parse(
        resp.content,
        response_headers={"content-type": resp.headers.get("content-type", "application/xml")},
    )
    exc = parsed.get("bozo_exception")
    if parsed.get("bozo") and not isinstance(exc, _BENIGN_BOZO):
        raise SourceError(f"malformed XML from {what}: {exc}")
    if not parsed.get("version") and not parsed.entries:
        raise SourceError(f"{what} did not return an RSS or Atom feed")
    return parsed


def conditional_headers(cursor: dict[str, Any]) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from what the last fetch saw."""
    headers = {}
    if isinstance(cursor.get("etag"), str):
        headers["If-None-Match"] = cursor["etag"][:500]
    if isinstance(cursor.get("last_modified"), str):
        headers["If-Modified-Since"] = cursor["last_modified"][:100]
    return headers


def validators(resp: Response) -> dict[str, str]:
    """The ETag / Last-Modified to send next time, when the server gave any."""
    out = {}
    if etag := resp.headers.get("etag"):
        out["etag"] = etag
    if modified := resp.headers.get("last-modified"):
        out["last_modified"] = modified
    return out


def entry_date(entry: Any, *keys: str) -> date | None:
    """The first of `keys` (feedparser's *_parsed UTC struct_time) as a date."""
    for key in keys:
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC).date()
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def entry_authors(entry: Any, separators: str = ";") -> list[str]:
    """Author names from feedparser's `authors`, splitting a single joined name."""
    names = [a.get("name", "") for a in entry.get("authors") or [] if isinstance(a, dict)]
    if len(names) == 1 and separators:
        names = re.split(separators, names[0])
    return clean_list(names, MAX_AUTHORS)


def _entry_key(entry: Any) -> tuple[str | None, str | None]:
    """(arXiv id, fallback key) for an entry."""
    raw_id = entry.get("id") if isinstance(entry.get("id"), str) else None
    link = entry.get("link") if isinstance(entry.get("link"), str) else None
    for candidate in (raw_id, link):
        if arxiv := canonical_arxiv_id(candidate):
            return arxiv, None
    for candidate in (raw_id, link):
        if candidate and (m := _DOI_RE.search(candidate)):
            return None, "doi:" + m.group(1).lower()
    key = clean_text(raw_id or link, 5000)
    if not key:
        return None, None
    if len(key) > MAX_ID or not _SAFE_ID_RE.match(key):
        key = "feed:" + hashlib.sha1(key.encode()).hexdigest()[:20]
    return None, key


def record_from_entry(entry: Any, source: str) -> PaperRecord:
    """One feed entry as a record; ValueError says what is missing."""
    title = clean_text(entry.get("title"), MAX_TITLE)
    if not title:
        raise ValueError("entry has no title")
    arxiv, key = _entry_key(entry)
    if not arxiv and not key:
        raise ValueError(f"entry {title[:60]!r} has neither an id nor a link")
    abstract = entry.get("summary") or ""
    if not abstract and entry.get("content"):
        abstract = entry["content"][0].get("value", "")
    link = clean_url(entry.get("link"))
    terms = [t.get("term") for t in entry.get("tags") or [] if isinstance(t, dict)]
    return PaperRecord(
        id=arxiv or key or "",
        title=title,
        source=source,
        abstract=clean_text(abstract, MAX_ABSTRACT),
        authors=entry_authors(entry),
        categories=clean_list(terms, 50, 100),
        published=entry_date(entry, "published_parsed", "updated_parsed"),
        url=arxiv_abs_url(arxiv) if arxiv else link,
        pdf_url=arxiv_pdf_url(arxiv) if arxiv else None,
    )


class FeedSource:
    """Any RSS 2.0 / Atom 1.0 feed."""

    def __init__(self, url: str, http: HttpClient) -> None:
        self.url = url
        self.name = f"feed:{url}"
        self.http = http

    def fetch(self, cursor: dict[str, Any], since: date | None = None) -> FetchBatch:
        headers = {} if since else conditional_headers(cursor)
        with self.http.session() as session:
            resp = session.get(self.url, headers=headers)
        if resp.status == 304:
            return FetchBatch(cursor=dict(cursor))
        parsed = parse_feed(resp, self.url)
        batch = FetchBatch(cursor=validators(resp))
        for n, entry in enumerate(parsed.entries, start=1):
            try:
                record = record_from_entry(entry, self.name)
            except ValueError as exc:
                batch.warnings.append(f"entry {n}: {exc}")
                continue
            if since and record.published and record.published < since:
                continue
            batch.records.append(record)
        require_some_readable(len(parsed.entries), batch.warnings, "entries")
        return batch


def build_feed_source(url: str, settings: Settings, http: HttpClient) -> FeedSource:
    if len(url) > MAX_FEED_URL or not clean_url(url):
        raise ConfigError(
            f"DIGEST_SOURCES: feed:URL needs an http(s) URL of at most {MAX_FEED_URL} "
            f"characters, got {url[:80]!r}"
        )
    return FeedSource(url, http)
