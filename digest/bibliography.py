"""Example papers from a reference library: a BibTeX file, a RIS file (Mendeley,
EndNote, Google Scholar), or a Zotero export (CSV, CSL JSON or Zotero RDF), read into arXiv ids and titles, then resolved against the
stored papers. The CLI (`--like-file`) and the web (the manage page's upload) both go
through `import_likes` and `add_likes`, so a file gives the same papers either way.

BibTeX is parsed by `bibtexparser` (2.x, with `pylatexenc` turning LaTeX in titles
into text): BibTeX in the wild is messy (nested braces, `@string` macros, comments,
LaTeX accents) and a hand-written reader would get it wrong in the cases people
have. A file is read whole or not at all: over `MAX_BYTES`, not text, or with no
readable entry, it is refused with one line and nothing changes; an entry without an
arXiv id or title, or that does not parse, is skipped and reported.

RIS is read by `rispy`: tagged lines (`TI  - ...`) are simple, but the tags' many
spellings (`TI`/`T1`, `UR`/`L1`, repeated `N1`) are what a library already knows.

Zotero RDF is XML from whoever uploads it: it is parsed by `defusedxml` with DTDs
forbidden, so entity expansion (billion laughs) and external entities are refused
before anything is expanded or fetched; Zotero never writes a DTD.

Ids are taken from every field that can hold one: `eprint` (with any
`archivePrefix`), arXiv URLs, `arXiv:` ids in a journal or note field, and arXiv
DOIs (`10.48550/arXiv.2401.06102`). Entries without an arXiv id are matched by
title (case and spacing aside) against stored papers.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest import store
from digest.errors import InputError
from digest.records import canonical_arxiv_id
from digest.store import Engine

MAX_BYTES = 4 * 1024 * 1024
MAX_ENTRIES = 5000
MAX_TITLE = 1000
MAX_REPORTED = 20  # skipped entries named in the report; the rest are counted
_LABEL_RE = re.compile(r"arxiv:\s+", re.IGNORECASE)  # Zotero's Extra: "arXiv: 2401.06102"
_DOI_RE = re.compile(r"10\.48550/arxiv\.(\d{4}\.\d{4,5})", re.IGNORECASE)
# Fields of a BibTeX entry, a CSL JSON item or a Zotero CSV row that may hold an id.
ID_FIELDS = (
    "eprint",
    "arxivid",
    "arxiv",
    "doi",
    "url",
    "journal",
    "note",
    "howpublished",
    "number",
    "id",
    "extra",
    "container-title",
    "archive_location",
    "publisher",
)


@dataclass
class Library:
    """What a file gave: arXiv ids, titles of entries without one, what was skipped."""

    ids: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    entries: int = 0
    # Whether titles are LaTeX (BibTeX). The other formats hold plain text, where
    # `%`, `&`, `$` and `_` are themselves, not a comment or markup.
    latex: bool = False

    def add(self, label: str, values: dict[str, str]) -> None:
        self.entries += 1
        found = arxiv_id_in(values.get(name, "") for name in ID_FIELDS)
        if found:
            self.ids.append(found)
            return
        title = clean_title(values.get("title", ""), latex=self.latex)
        if title:
            self.titles.append(title)
        else:
            self.skipped.append(f"{label}: no arXiv id and no title")


@dataclass
class LikeImport:
    """A library resolved against the stored papers."""

    paper_ids: list[str]
    unmatched_titles: list[str]
    skipped: list[str]
    entries: int

    def summary(self) -> str:
        parts = [f"{_count(len(self.paper_ids), 'example paper')} from {self.entries} entries"]
        if self.unmatched_titles:
            parts.append(
                f"{_count(len(self.unmatched_titles), 'title')} not among the stored papers"
            )
        if self.skipped:
            parts.append(f"{_count(len(self.skipped), 'entry', 'entries')} skipped")
        return "; ".join(parts)

    def notes(self, name: str) -> list[str]:
        """What to tell the person: the summary, what was skipped, titles not found."""
        out = [f"{name}: {self.summary()}"]
        out += [f"{name}: skipped {s}" for s in self.skipped[:MAX_REPORTED]]
        out += [f"{name}: no stored paper titled {t[:100]!r}" for t in self.unmatched_titles[:5]]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "paper_ids": self.paper_ids,
            "unmatched_titles": self.unmatched_titles[:MAX_REPORTED],
            "skipped": self.skipped[:MAX_REPORTED],
            "entries": self.entries,
        }


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def arxiv_id_in(values: Iterable[str]) -> str | None:
    """The first arXiv id in any of `values` (an id, a URL, an arXiv DOI)."""
    for value in values:
        if not value or not isinstance(value, str):
            continue
        found = canonical_arxiv_id(_LABEL_RE.sub("arXiv:", value[:2000]))
        if found:
            return found
        doi = _DOI_RE.search(value)
        if doi:
            return doi.group(1)
    return None


# Characters and pairs LaTeX reads specially; a title without any is plain text.
_PLAIN_TITLE = re.compile(r"(?:(?!--|``|'')[^\\{}$~%^_&#])*")


def clean_title(raw: str, latex: bool = True) -> str:
    """A title as text, spaces folded; with `latex`, LaTeX accents and commands
    rendered and braces gone."""
    if not isinstance(raw, str) or not raw.strip():
        return ""
    raw = raw[:MAX_TITLE]
    if not latex or _PLAIN_TITLE.fullmatch(
        raw
    ):  # no LaTeX in it: pylatexenc (~0.3 ms) would keep it
        return " ".join(raw.split())
    try:
        from pylatexenc.latex2text import LatexNodes2Text

        text = LatexNodes2Text(math_mode="text").latex_to_text(raw)
    except Exception:  # noqa: BLE001 - malformed LaTeX: keep the words, drop the braces
        text = raw.replace("{", "").replace("}", "")
    return " ".join(text.split())


def read_library(data: bytes, name: str = "") -> Library:
    """Parse a BibTeX file, a Zotero CSV export or CSL JSON (told apart by content)."""
    if len(data) > MAX_BYTES:
        raise InputError(
            f"{name or 'the file'} is {len(data) // 1024} KiB; at most "
            f"{MAX_BYTES // (1024 * 1024)} MiB is read (export a collection instead)"
        )
    try:
        text = data.decode(_encoding_of(data))
    except UnicodeDecodeError:
        raise InputError(
            f"{name or 'the file'} is not UTF-8 text (export or save it as UTF-8)"
        ) from None
    if "\x00" in text:
        raise InputError(f"{name or 'the file'} is not a text file")
    head = text.lstrip()[:200]
    if head.startswith(("[", "{")) and not head.startswith("{\\"):
        library = _from_csl_json(text, name)
    elif head.startswith("<"):
        library = _from_zotero_rdf(text, name)
    elif _RIS_START.match(head):
        library = _from_ris(text, name)
    elif _looks_like_csv(head):
        library = _from_csv(text)
    else:
        library = _from_bibtex(text)
    if library.entries > MAX_ENTRIES:
        raise InputError(
            f"{name or 'the file'} has {library.entries} entries; at most {MAX_ENTRIES} are read"
        )
    if not library.ids and not library.titles:
        reason = f" ({library.skipped[0]})" if library.skipped else ""
        raise InputError(
            f"no paper found in {name or 'the file'}: no entry with an arXiv id or a title{reason}"
        )
    return library


def _encoding_of(data: bytes) -> str:
    """UTF-8, or UTF-16 when the file starts with its byte order mark: what Windows
    tools write as "Unicode". A BOM is unambiguous; other encodings are refused."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


def _from_bibtex(text: str) -> Library:
    import bibtexparser

    # bibtexparser logs every block it cannot parse; we report them ourselves.
    logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)
    parsed = bibtexparser.parse_string(text)
    library = Library(latex=True)
    for entry in parsed.entries:
        values = {f.key.lower(): str(f.value) for f in entry.fields if isinstance(f.value, str)}
        library.add(f"entry {entry.key[:80]!r}", values)
    for block in parsed.failed_blocks:
        first = " ".join(str(getattr(block, "raw", "")).split())[:60]
        library.skipped.append(f"unreadable entry at {first!r}")
    return library


def _from_csl_json(text: str, name: str) -> Library:
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also a number over 4,300 digits
        raise InputError(f"{name or 'the file'} is not valid JSON (CSL JSON expected)") from None
    if isinstance(items, dict):
        items = items.get("items", [items])
    if not isinstance(items, list):
        raise InputError(f"{name or 'the file'}: CSL JSON is a list of items")
    library = Library()
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            library.skipped.append(f"item {i}: not an object")
            continue
        values = {str(k).lower(): v for k, v in item.items() if isinstance(v, str)}
        library.add(f"item {i}", values)
    return library


RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
ZOTERO = "{http://www.zotero.org/namespaces/export#}"
DC = "{http://purl.org/dc/elements/1.1/}"
PRISM = "{http://prismstandard.org/namespaces/1.2/basic/}"
# Zotero's own records beside the papers: files, notes, collections.
NOT_PAPERS = {"attachment", "note"}


def _from_zotero_rdf(text: str, name: str) -> Library:
    """A "Zotero RDF" export: one top-level element per item (`bib:Article`,
    `rdf:Description`, ...) with a `z:itemType`; attachments, notes, collections and
    the journals items point at are not papers. An item's own `dc:title` is its
    title (a journal's, nested in `dcterms:isPartOf`, is not); ids come from its
    `rdf:about` URL, `dc:identifier` (a DOI or a URI), `dc:description` (Zotero's
    "arXiv:2305.18290 [cs]") and `prism:number`."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    shown = name or "the file"
    try:
        root = fromstring(text, forbid_dtd=True)
    except DefusedXmlException:
        raise InputError(
            f"{shown}: XML with a DTD or entities is not read (Zotero RDF has none)"
        ) from None
    except ParseError as exc:
        raise InputError(f"{shown} is not well-formed XML ({exc})") from None
    if root.tag != f"{RDF}RDF":
        raise InputError(
            f"{shown} is XML but not a Zotero RDF export; export as Zotero RDF, BibTeX, "
            "CSV or CSL JSON"
        )
    library = Library()
    for i, item in enumerate(root, 1):
        kind = (item.findtext(f"{ZOTERO}itemType") or "").strip()
        if not kind or kind in NOT_PAPERS:
            continue
        values = {
            "url": item.get(f"{RDF}about", ""),
            "doi": " ".join(" ".join(e.itertext()) for e in item.findall(f"{DC}identifier")),
            "extra": " ".join(e.text or "" for e in item.findall(f"{DC}description")),
            "number": item.findtext(f"{PRISM}number") or "",
            "title": item.findtext(f"{DC}title") or "",
        }
        library.add(f"item {i} ({kind[:40]})", values)
    return library


# A RIS file starts with its first record's type tag.
_RIS_START = re.compile(r"TY {2}- ")
_RIS_RECORD = re.compile(r"^TY {2}- ", re.MULTILINE)
# rispy's names for the tags that may hold a title or an arXiv id.
_RIS_TITLES = ("title", "primary_title")
_RIS_IDS = {"doi": "doi", "urls": "url", "notes": "note", "journal_name": "journal", "id": "id"}


def _from_ris(text: str, name: str) -> Library:
    """A RIS export: one record per `TY` ... `ER`; a record left open is not read."""
    import rispy

    try:
        records = rispy.loads(text)
    except Exception as exc:  # noqa: BLE001 - rispy raises several kinds on bad input
        raise InputError(
            f"{name or 'the file'} is not a readable RIS file ({exc!s:.100})"
        ) from None
    library = Library()
    for i, record in enumerate(records, 1):
        values = {
            ours: " ".join(
                v for v in (raw if isinstance(raw, list) else [raw]) if isinstance(v, str)
            )
            for key, ours in _RIS_IDS.items()
            if (raw := record.get(key)) is not None
        }
        title = next((record[k] for k in _RIS_TITLES if isinstance(record.get(k), str)), "")
        values["title"] = title
        library.add(f"record {i}", values)
    # rispy drops a record that never ends (a truncated export, a hand-edited file)
    # without a word: say so, or its paper is missing with nothing to tell why.
    unended = len(_RIS_RECORD.findall(text)) - len(records)
    if unended > 0:
        library.entries += unended
        library.skipped += ["a record with no end line (ER  - ), not read"] * unended
    return library


def _looks_like_csv(head: str) -> bool:
    first = head.splitlines()[0] if head else ""
    return first.startswith('"') and '"Title"' in first


def _from_csv(text: str) -> Library:
    """A Zotero CSV export: a header row with "Title", "Url", "DOI", "Extra", ..."""
    library = Library()
    rows: Iterator[dict[str, str | None]] = csv.DictReader(io.StringIO(text))
    try:
        for i, row in enumerate(rows, 2):
            values = {str(k).lower(): v for k, v in row.items() if isinstance(v, str) and k}
            library.add(f"line {i}", values)
    except csv.Error as exc:
        library.skipped.append(f"the rest of the file: {exc}")
    return library


def resolve_likes(engine: Engine, library: Library) -> LikeImport:
    """Ids as found, titles matched against stored papers (case and spacing aside)."""
    by_title = store.paper_ids_by_titles(engine, library.titles)
    ids = list(library.ids)
    unmatched = []
    for title in library.titles:
        found = by_title.get(title_key(title))
        if found:
            ids.append(found)
        else:
            unmatched.append(title)
    return LikeImport(list(dict.fromkeys(ids)), unmatched, library.skipped, library.entries)


def title_key(title: str) -> str:
    return store.title_key(title)


def import_likes(engine: Engine, data: bytes, name: str) -> LikeImport:
    """A file's bytes read (any format above) and resolved against the stored papers;
    InputError, naming the file, when it is refused whole."""
    return resolve_likes(engine, read_library(data, name))


def add_likes(current: Sequence[str], found: Sequence[str], limit: int) -> tuple[list[str], int]:
    """The example papers after an import: the current ones first, then the new ones
    in file order, repeats dropped, at most `limit`; and how many new ones did not fit."""
    merged = list(dict.fromkeys([*current, *found]))
    return merged[:limit], max(0, len(merged) - limit)


def likes_from_file(engine: Engine, path: Path) -> tuple[LikeImport, list[str]]:
    """`--like-file`: the file read and resolved, and what to say about it on stderr;
    refused whole when unreadable."""
    try:
        # Read up to one byte past the cap, whatever the file claims: a device or a
        # pipe (/dev/zero, <(yes)) has no size and would be read without end.
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"--like-file: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        cap = f"{MAX_BYTES // (1024 * 1024)} MiB"
        raise InputError(f"--like-file: {path.name} is over {cap}; at most {cap} is read")
    try:
        found = import_likes(engine, data, path.name)
    except InputError as exc:
        raise InputError(f"--like-file: {exc}") from None
    return found, found.notes(path.name)
