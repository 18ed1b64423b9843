"""The one narrow interface every paper source implements, and the record it yields.

A source turns some remote listing into `PaperRecord`s; it never touches the database.
The store merges records into papers, so adding a source is one file.
"""

from __future__ import annotations

import bisect
import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from digest.errors import SourceError

# Defined in the core (the store uses them too); sources import them from here.
from digest.records import MAX_URL
from digest.records import PaperRecord as PaperRecord
from digest.records import canonical_arxiv_id as canonical_arxiv_id

MAX_TITLE = 1000
MAX_ABSTRACT = 20000
MAX_AUTHORS = 500

# Only real HTML element names count as markup, so that plain-text math such as
# `a < b and c > d` or `$p<q$` survives; script/style lose their content too.
_HTML_NAMES = (
    r"a|abbr|acronym|address|article|aside|audio|b|bdi|bdo|big|blockquote|body|br|button|"
    r"caption|center|cite|code|col|colgroup|dd|del|details|dfn|div|dl|dt|em|embed|"
    r"fieldset|figcaption|figure|font|footer|form|h[1-6]|head|header|hr|html|i|iframe|img|"
    r"input|ins|kbd|label|legend|li|link|main|mark|meta|nav|nobr|noscript|object|ol|option|"
    r"p|picture|pre|q|s|samp|section|select|small|source|span|strike|strong|sub|summary|"
    r"sup|svg|table|tbody|td|textarea|tfoot|th|thead|time|title|tr|tt|u|ul|var|video|wbr"
)
_INLINE_NAMES = (
    r"a|abbr|acronym|b|bdi|bdo|big|cite|code|del|dfn|em|font|i|ins|kbd|mark|nobr|q|s|samp|"
    r"small|span|strike|strong|sub|sup|time|tt|u|var|wbr"
)
_TAG_RE = re.compile(rf"</?(?:{_HTML_NAMES})(?:\s[^<>]{{0,2000}})?/?>", re.IGNORECASE)
_INLINE_TAG_RE = re.compile(rf"</?(?:{_INLINE_NAMES})(?:\s[^<>]{{0,2000}})?/?>", re.IGNORECASE)
# Namespaced elements, as journal feeds carry abstracts (`<jats:p>`, `<jats:italic>`,
# `<mml:mi>`): never plain text, so any name goes; inline ones leave no trace.
_NS_TAG_RE = re.compile(r"</?[A-Za-z][\w-]{0,30}:([A-Za-z][\w.-]{0,60})(?:\s[^<>]{0,2000})?/?>")
_NS_INLINE = frozenset(
    [
        "italic",
        "bold",
        "sub",
        "sup",
        "sc",
        "underline",
        "monospace",
        "roman",
        "sans-serif",
        "inline-formula",
        "mi",
        "mn",
        "mo",
        "ms",
        "mtext",
        "mrow",
        "msub",
        "msup",
        "msubsup",
        "mfrac",
        "msqrt",
        "mroot",
        "mover",
        "munder",
    ]
)
# A script or style element loses its content up to its end tag, at most
# _SCRIPT_SPAN characters on. Openers and end tags are each found in one pass and
# paired by bisection: a lazy `<script>.{0,N}?</script>` regex rescanned N characters
# per opener, and a feed summary of 160 kB of `<script>` took 34 s of CPU.
_SCRIPT_OPEN_RE = re.compile(r"<(script|style)\b[^<>]{0,2000}>", re.IGNORECASE)
_SCRIPT_CLOSE_RE = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in ("script", "style")
}
_SCRIPT_SPAN = 100000
# Of a field, this many characters per character kept are read: markup and entities
# rarely take more, and a 30 MB summary must not cost minutes of regex work.
_RAW_PER_KEPT = 8
_RAW_MIN = 100000
_WS_RE = re.compile(r"\s+")


def _drop_scripts(text: str) -> str:
    """Replace each <script>/<style> element (opener to its end tag) with a space."""
    openers = list(_SCRIPT_OPEN_RE.finditer(text))
    if not openers:
        return text
    closes = {name: list(pattern.finditer(text)) for name, pattern in _SCRIPT_CLOSE_RE.items()}
    starts = {name: [m.start() for m in found] for name, found in closes.items()}
    out: list[str] = []
    pos = 0
    for opener in openers:
        if opener.start() < pos:
            continue  # inside an element already dropped
        name = opener.group(1).lower()
        i = bisect.bisect_left(starts[name], opener.end())
        if i == len(starts[name]) or starts[name][i] - opener.end() > _SCRIPT_SPAN:
            continue
        out += [text[pos : opener.start()], " "]
        pos = closes[name][i].end()
    out.append(text[pos:])
    return "".join(out)


def _drop_comments(text: str) -> str:
    """Replace each `<!-- ... -->` with a space, in one pass: once no `-->` follows an
    opener, none follows a later one either."""
    out: list[str] = []
    pos = 0
    while (start := text.find("<!--", pos)) != -1:
        end = text.find("-->", start + 4)
        if end == -1:
            break
        out += [text[pos:start], " "]
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


def _strip_markup(text: str) -> str:
    """Drop HTML comments and tags (inline ones without a trace: H<sub>2</sub>O ->
    H2O)."""
    text = _drop_scripts(_drop_comments(text))
    text = _NS_TAG_RE.sub(lambda m: "" if m.group(1).lower() in _NS_INLINE else " ", text)
    text = _INLINE_TAG_RE.sub("", text)
    return _TAG_RE.sub(" ", text)


def clean_text(value: Any, limit: int, markup: bool = True) -> str:
    """Fold whitespace (CR/LF included), decode entities, drop markup, cap the length.

    `markup=False` is for sources whose fields are plain text (JSON Lines): there a
    `<script>` in a title is text, kept as written and escaped when rendered.
    LaTeX like `$\\alpha$` is left as written: the renderer makes it readable.
    """
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        # JSON that changed shape (`"title": {"en": ...}`, `"authors": [[...]]`): its
        # repr ("{'en': ...}") is no title, and the item is reported as lacking one.
        return ""
    text = str(value)
    raw_limit = max(limit * _RAW_PER_KEPT, _RAW_MIN)
    cut = len(text) > raw_limit
    text = text[:raw_limit]
    text = unicodedata.normalize("NFC", text)
    if markup:
        # Markup again after decoding: `&lt;script&gt;` must not come back as a tag.
        text = _strip_markup(html.unescape(_strip_markup(text)))
    text = "".join(ch if ch.isprintable() or ch.isspace() else " " for ch in text)
    text = _WS_RE.sub(" ", text).strip()
    if len(text) > limit or (cut and text):
        text = text[: limit - 1].rstrip() + "…"
    return text


_URL_RE = re.compile(r"^https?://[^\s<>\"'`\\]+$", re.IGNORECASE)


def arxiv_abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def arxiv_pdf_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}"


def clean_url(value: Any) -> str | None:
    """An http(s) URL fit to put in an email link, or None (never a `javascript:` one)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > MAX_URL or not _URL_RE.match(text):
        return None
    return text


# A publication date later than this many days past today (UTC) is no date: time
# zones and arXiv's evening announcements put real ones at most a day ahead.
MAX_DAYS_AHEAD = 2


def clean_date(value: date | None, today: date | None = None) -> date | None:
    """`value`, or None when it lies in the future (a feed's typo, a placeholder year
    such as 2126, or a hostile entry). Ranking measures recency from the newest paper
    of a run, so one paper dated a century ahead made every other paper's recency
    nil, for every subscriber, until it aged out: decades."""
    if value is None:
        return None
    today = today or datetime.now(UTC).date()
    return value if value <= today + timedelta(days=MAX_DAYS_AHEAD) else None


def clean_int(value: Any) -> int | None:
    """A non-negative whole number from JSON (int or digit string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 12:
        return int(value.strip())
    return None


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


def require_some_readable(total: int, problems: list[str], what: str) -> None:
    """Fail the fetch when every item of a non-empty response was unreadable: that is a
    changed or broken API, not a few bad items, and should show as a failed source."""
    if total and len(problems) >= total:
        raise SourceError(f"none of the {total} {what} could be read; first: {problems[0]}")


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
