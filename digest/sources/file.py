"""`file:PATH`: papers from a JSON Lines file, one paper per line.

Also serves the bundled sample (`sample`), so the product works with no network.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from digest.errors import SourceError
from digest.sources.base import (
    MAX_ABSTRACT,
    MAX_AUTHORS,
    MAX_TITLE,
    FetchBatch,
    PaperRecord,
    clean_date,
    clean_list,
    clean_text,
    require_some_readable,
)

SAMPLE_NAME = "sample"
MAX_ID = 200  # Paper.id
MAX_COUNT = 10**11 - 1  # fits a database integer column everywhere


def sample_path() -> Path:
    """The sample papers shipped inside the package."""
    return Path(str(resources.files("digest") / "data" / "sample_papers.jsonl"))


def title_id(title: str) -> str:
    """A stable id for a paper that has no arXiv id, derived from its normalised title."""
    norm = re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()
    return "title:" + hashlib.sha1(norm.encode()).hexdigest()[:16]


def _parse_date(value: Any) -> date | None:
    if not value:
        return None
    text = str(value).strip()
    for parser in (
        lambda s: date.fromisoformat(s[:10]),
        lambda s: datetime.strptime(s, "%b %d, %Y").date(),
    ):
        try:
            return parser(text)
        except ValueError:
            continue
    raise ValueError(f"published: expected an ISO date, got {text[:40]!r}")


def _opt_url(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if not value:
        return None
    text = str(value).strip()
    if not re.match(r"^https?://[^\s<>\"]+$", text) or len(text) > 2000:
        raise ValueError(f"{key}: expected an http(s) URL, got {text[:60]!r}")
    return text


def _opt_int(value: Any) -> int | None:
    """A count such as upvotes; a huge one would overflow the column and fail the
    whole batch, so it is a bad line instead."""
    if value is None or value == "":
        return None
    problem = f"upvotes: expected a whole number from 0 to {MAX_COUNT}, got {str(value)[:40]!r}"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(problem)
    text = str(value).strip()
    if not text.isdigit() or len(text) > len(str(MAX_COUNT)):
        raise ValueError(problem)
    return int(text)


def record_from_json(obj: Any, source: str) -> PaperRecord:
    """Validate one JSON object into a record; raise ValueError naming the bad field."""
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    raw_id = obj.get("id")
    title = clean_text(obj.get("title"), MAX_TITLE, markup=False)
    if not title:
        raise ValueError("missing required field 'title'")
    if raw_id is None or isinstance(raw_id, bool) or not str(raw_id).strip():
        raise ValueError("missing required field 'id'")
    if not isinstance(raw_id, str | int):
        raise ValueError(f"id: expected a string, got {type(raw_id).__name__}")
    pid = clean_text(raw_id, MAX_ID + 1)
    if len(pid) > MAX_ID:
        # Cutting it would make two long ids one paper.
        raise ValueError(f"id: expected at most {MAX_ID} characters")
    return PaperRecord(
        id=pid,
        title=title,
        source=source,
        abstract=clean_text(obj.get("abstract"), MAX_ABSTRACT, markup=False),
        authors=clean_list(obj.get("authors"), MAX_AUTHORS),
        categories=clean_list(obj.get("categories"), 50, 50),
        published=clean_date(_parse_date(obj.get("published"))),
        url=_opt_url(obj, "url"),
        pdf_url=_opt_url(obj, "pdf_url"),
        code_url=_opt_url(obj, "code_url"),
        project_url=_opt_url(obj, "project_url"),
        hf_url=_opt_url(obj, "hf_url"),
        upvotes=_opt_int(obj.get("upvotes")),
        ai_summary=clean_text(obj.get("ai_summary"), 5000) or None,
        ai_keywords=clean_list(obj.get("ai_keywords"), 50, 100),
    )


class FileSource:
    """Reads a JSON Lines file; a bad line is reported by number and skipped."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or f"file:{path}"

    def fetch(self, cursor: dict[str, Any], since: date | None = None) -> FetchBatch:
        batch = FetchBatch(cursor=dict(cursor))
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        lines = 0
        with handle:
            for lineno, raw in enumerate(handle, start=1):
                line = raw.strip()
                if not line:
                    continue
                lines += 1
                try:
                    # utf-8-sig: a file saved with a byte-order mark keeps its first line.
                    record = record_from_json(json.loads(line.decode("utf-8-sig")), self.name)
                except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                    # RecursionError: `[[[[...` nested too deep is one bad line too.
                    batch.warnings.append(f"{self.path.name} line {lineno}: {exc}")
                    continue
                if since and record.published and record.published < since:
                    continue
                batch.records.append(record)
        # Not one readable line: the wrong file, not a few bad lines; fail the source.
        require_some_readable(lines, batch.warnings, f"lines of {self.path.name}")
        return batch
