"""`feed:URL`: any RSS or Atom feed (bioRxiv, a journal, a lab blog) through feedparser.

Entries are keyed by the arXiv id their id or link points to (so a journal's entry for
an arXiv preprint merges with it), else by a DOI, else by the entry id or link itself.
The feed is fetched with a conditional GET, so an unchanged feed costs one 304.

Malformed XML fails the fetch rather than feeding a half-parsed entry to the store:
feedparser's lenient fallback would happily return a truncated abstract.

A feed is taken up to `DIGEST_MAX_ENTRIES_PER_FETCH` entries and
`DIGEST_MAX_FEED_BYTES` bytes. feedparser parses a whole document in memory, so the
body is scanned with expat while it downloads (`FeedTrimmer`): bytes are kept only up
to the end of the last entry wanted, the rest is only counted, and the kept part,
with its open elements closed, is what feedparser parses. The cut is reported as a
warning ("kept the first 5000 of 110000 entries").
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.parsers import expat

import feedparser
import httpx

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
    clean_date,
    clean_list,
    clean_text,
    clean_url,
    require_some_readable,
)
from digest.sources.http import BodyReader, HttpClient, HttpSession, Response

MAX_FEED_URL = 450  # the source name keys SourceState (500 characters)
MAX_ID = 200
_BENIGN_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s?#&\"'<>]+)", re.IGNORECASE)
_SAFE_ID_RE = re.compile(r"^[\x21-\x7e]+$")


_ENTRY_NAMES = frozenset({"item", "entry"})  # RSS 0.9x/1.0/2.0 item, Atom entry
_ENTRY_PARENTS = frozenset({"channel", "feed", "RDF"})
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class _NotScannable(Exception):
    """The scan stops (entity declarations, UTF-16): feedparser gets the whole body."""


def _local(name: str) -> str:
    return name.rpartition(":")[2]


class FeedTrimmer:
    """A `BodyReader` for RSS/Atom: keeps the bytes of the first `max_entries` entries
    (and of the feed around them) and counts the rest without keeping them.

    Expat is given each chunk as it arrives. After each entry's end tag, the position
    of the next event is a safe cut: the bytes before it, followed by end tags for the
    elements still open there, are a well-formed feed. Once `max_entries` entries have
    ended, bytes are no longer kept. A document expat cannot scan safely (a DTD with
    entity declarations, UTF-16, malformed XML) is kept whole up to `max_bytes`, and
    the entry cap is applied after parsing (`cap_entries`).
    """

    def __init__(self, max_entries: int, max_bytes: int, shown: str) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.shown = shown
        self.entries = 0  # entries that ended so far
        self.read = 0
        self.over_bytes = False
        self.scanning = True
        self._kept = bytearray()
        self._frozen = False  # the cut is final: max_entries entries ended
        self._cut: tuple[int, list[str]] | None = None  # offset, end tags to append
        self._pending = False  # an entry just ended: the next event's offset is a cut
        self._stack: list[str] = []
        self._entry_depth: int | None = None
        self._parser = expat.ParserCreate()
        p = self._parser
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._event
        p.CommentHandler = self._event
        p.ProcessingInstructionHandler = self._event2
        p.EntityDeclHandler = self._refuse
        p.ExternalEntityRefHandler = self._refuse

    # -- expat handlers
    def _mark(self) -> None:
        if self._pending:
            self._pending = False
            if not self._frozen:
                self._cut = (self._parser.CurrentByteIndex, self._stack[::-1])
                if self.entries >= self.max_entries:
                    self._freeze()

    def _event(self, _data: str) -> None:
        self._mark()

    def _event2(self, _target: str, _data: str) -> None:
        self._mark()

    def _refuse(self, *_args: Any) -> int:
        raise _NotScannable

    def _start(self, name: str, _attrs: Any) -> None:
        self._mark()
        parent = _local(self._stack[-1]) if self._stack else ""
        self._stack.append(name)
        if self._entry_depth is None and _local(name) in _ENTRY_NAMES and parent in _ENTRY_PARENTS:
            self._entry_depth = len(self._stack)

    def _end(self, name: str) -> None:
        self._mark()
        if self._entry_depth == len(self._stack):
            self._entry_depth = None
            self.entries += 1
            self._pending = True
        self._stack.pop()

    def _freeze(self) -> None:
        """Keep no more bytes; only count entries from here on."""
        self._frozen = True
        assert self._cut is not None
        del self._kept[self._cut[0] :]
        self._parser.CharacterDataHandler = None  # counting needs tags only: faster
        self._parser.CommentHandler = None

    # -- BodyReader
    def feed(self, chunk: bytes) -> bool:
        room = self.max_bytes - self.read
        if len(chunk) > room:
            chunk, self.over_bytes = chunk[:room], True
        if self.read == 0 and chunk.startswith(_UTF16_BOMS):
            self.scanning = False
        self.read += len(chunk)
        if not self._frozen:
            self._kept += chunk
        if self.scanning:
            try:
                self._parser.Parse(chunk, False)
            except (expat.ExpatError, _NotScannable):
                self.scanning = False
        if self._frozen and not self.scanning:
            return False  # the cut is made and nothing more can be counted
        return not self.over_bytes

    def finish(self) -> tuple[bytes, str]:
        cut = self._cut if (self._frozen or self.over_bytes) else None
        if self.over_bytes and cut is None:
            raise SourceError(
                f"feed from {self.shown} is larger than {self.max_bytes} bytes "
                "(DIGEST_MAX_FEED_BYTES) and no entry ends within them"
            )
        if cut is None:
            return bytes(self._kept), ""
        offset, open_names = cut
        body = bytes(self._kept[:offset]) + "".join(f"</{n}>" for n in open_names).encode()
        return body, self._note()

    def _note(self) -> str:
        kept = min(self.entries, self.max_entries) if self._frozen else self.entries
        if self.over_bytes:
            return (
                f"read only the first {self.max_bytes} bytes (DIGEST_MAX_FEED_BYTES): "
                f"kept the first {kept} entries"
            )
        if not self.scanning:
            return f"kept the first {kept} entries; the feed has more"
        if self.entries > self.max_entries:
            return (
                f"kept the first {self.max_entries} of {self.entries} entries "
                "(DIGEST_MAX_ENTRIES_PER_FETCH)"
            )
        return ""


def feed_reader(settings: Settings) -> Callable[[str], BodyReader]:
    """The reader `HttpSession.get` makes for each attempt at a feed."""
    return lambda shown: FeedTrimmer(settings.max_entries_per_fetch, settings.max_feed_bytes, shown)


def get_feed(
    session: HttpSession, url: str, settings: Settings, headers: dict[str, str]
) -> Response:
    """GET an RSS/Atom feed, trimmed to the entry and byte caps while it downloads."""
    return session.get(url, headers=headers, reader=feed_reader(settings))


def cap_entries(entries: Sequence[Any], resp: Response, limit: int) -> tuple[Sequence[Any], str]:
    """At most `limit` entries, and the note to report: the trimmer's, or one made
    here when the body could not be trimmed while downloading."""
    if len(entries) > limit:
        note = f"kept the first {limit} of {len(entries)} entries (DIGEST_MAX_ENTRIES_PER_FETCH)"
        return entries[:limit], note
    return entries, resp.note


def parse_feed(resp: Response, what: str) -> Any:
    """Parse an RSS/Atom body strictly: a well-formedness error is a SourceError."""
    parsed = feedparser.parse(
        resp.content,
        response_headers={"content-type": resp.headers.get("content-type", "application/xml")},
        # feedparser's HTML sanitizer and relative-URI resolver (sgmllib) are quadratic
        # on some markup: 1.2 MB of `<!--` in one description took 218 s. Markup is
        # stripped by `clean_text` (linear) and escaped when rendered, so neither is
        # needed.
        sanitize_html=False,
        resolve_relative_uris=False,
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
    """The first of `keys` (feedparser's *_parsed UTC struct_time) as a date; one in
    the future is no date (`clean_date`). Each key is read only when the entry has it
    (`in` is exact for `updated_parsed`): `entry.get("updated_parsed")` on an entry
    with only a publication date falls back to it with a DeprecationWarning, a
    fallback feedparser will drop."""
    for key in keys:
        if key not in entry or not entry[key]:
            continue
        try:
            day = datetime.fromtimestamp(calendar.timegm(entry[key]), UTC).date()
        except (OverflowError, ValueError, TypeError):
            continue
        if (kept := clean_date(day)) is not None:
            return kept
    return None


def entry_authors(entry: Any, separators: str = ";") -> list[str]:
    """Author names from feedparser's `authors`, splitting a single joined name."""
    names = [a.get("name", "") for a in entry.get("authors") or [] if isinstance(a, dict)]
    if len(names) == 1 and separators:
        names = re.split(separators, names[0])
    return clean_list(names, MAX_AUTHORS)


def _links(entry: Any) -> list[str]:
    """Every link of an entry (Atom `related`, `alternate`, enclosures), in order."""
    links = entry.get("links")
    hrefs = [x.get("href") for x in links[:20] if isinstance(x, dict)] if links else []
    return [h for h in hrefs if isinstance(h, str)]


def _entry_key(entry: Any) -> tuple[str | None, str | None]:
    """(arXiv id, fallback key) for an entry: the arXiv id in its id, its main link
    or any other link (a journal's entry whose `related` link is the preprint), so
    the paper is one row whichever feed saw it first."""
    raw_id = entry.get("id") if isinstance(entry.get("id"), str) else None
    link = entry.get("link") if isinstance(entry.get("link"), str) else None
    for candidate in (raw_id, link, *_links(entry)):
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

    def __init__(self, url: str, http: HttpClient, settings: Settings) -> None:
        self.url = url
        self.name = f"feed:{url}"
        self.http = http
        self.settings = settings

    def fetch(self, cursor: dict[str, Any], since: date | None = None) -> FetchBatch:
        headers = {} if since else conditional_headers(cursor)
        with self.http.session() as session:
            resp = get_feed(session, self.url, self.settings, headers)
        if resp.status == 304:
            return FetchBatch(cursor=dict(cursor))
        parsed = parse_feed(resp, self.url)
        entries, cut = cap_entries(parsed.entries, resp, self.settings.max_entries_per_fetch)
        batch = FetchBatch(cursor=validators(resp))
        for n, entry in enumerate(entries, start=1):
            try:
                record = record_from_entry(entry, self.name)
            except ValueError as exc:
                batch.warnings.append(f"entry {n}: {exc}")
                continue
            if since and record.published and record.published < since:
                continue
            batch.records.append(record)
        require_some_readable(len(entries), batch.warnings, "entries")
        if cut:  # first: `digest status` shows the start of the warnings
            batch.warnings.insert(0, cut)
        return batch


def _parses(url: str) -> bool:
    """Whether the URL names a host and a port both parsers agree on: `[::1` or
    `x:99999` pass the pattern of `clean_url` and would fail every fetch."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError when not a number from 0 to 65535
        return bool(parts.hostname) and bool(httpx.URL(url).host)
    except (ValueError, httpx.InvalidURL, UnicodeError):
        return False


def build_feed_source(url: str, settings: Settings, http: HttpClient) -> FeedSource:
    if len(url) > MAX_FEED_URL or not clean_url(url) or not _parses(url):
        raise ConfigError(
            f"DIGEST_SOURCES: feed:URL needs an http(s) URL of at most {MAX_FEED_URL} "
            f"characters, got {url[:80]!r}"
        )
    return FeedSource(url, http, settings)
