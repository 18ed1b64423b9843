"""A reference library uploaded with a form (sign-up page, manage page): a BibTeX or RIS file
or a Zotero export (BibTeX, Zotero RDF, CSL JSON, CSV), read and resolved by
`digest.bibliography` exactly as `digest set --like-file` reads it, its papers joined
to the example papers as `--like-file` adds them.

The upload is a multipart POST under the app's body cap (`MAX_BODY_BYTES`), counted
while it is read (`security.BodyLimit`): a bigger one is refused without reading past
the cap, and the page it came from says so (413) instead of a bare answer. A file that
is too big, unreadable, or names no paper changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from digest.bibliography import LikeImport, add_likes, import_likes
from digest.errors import InputError
from digest.matching.interest import MAX_EXAMPLES
from digest.store import Engine
from digest.web.security import MAX_BODY_BYTES

FIELD = "library"
_UPLOAD_PATH = re.compile(r"/manage/[^/]+/examples|/subscribe")
_UNSAFE_NAME = re.compile(r"[^\w .,()+-]")


def is_upload(path: str) -> bool:
    """The paths whose too-big bodies their page explains (see `BodyLimit`)."""
    return _UPLOAD_PATH.fullmatch(path) is not None


@dataclass(frozen=True)
class Added:
    """What an upload did: the resolved file, and how many papers were new."""

    found: LikeImport
    new: int
    dropped: int

    def notes(self, name: str) -> list[str]:
        head = (
            f"Added {self.new} example paper{'s' if self.new != 1 else ''} from {name}."
            if self.new
            else f"Every paper in {name} is among your example papers already."
        )
        out = [head, *self.found.notes(name)[1:]]
        if self.dropped:
            out.append(f"{self.dropped} papers were left out: you can keep {MAX_EXAMPLES}.")
        return out


def chosen_file(form: FormData) -> UploadFile | None:
    """The library file sent with the form, or None when none was chosen (a browser
    sends an empty part without a file name then)."""
    upload = form.get(FIELD)
    return upload if isinstance(upload, UploadFile) and upload.filename else None


def shown_name(upload: UploadFile) -> str:
    """The file's name as the person chose it, safe to repeat back: no folders, no
    control characters, at most 80 characters."""
    base = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE_NAME.sub("_", base)[:80] or "the file"


def merge_library(
    engine: Engine, data: bytes, name: str, current: list[str]
) -> tuple[list[str], Added]:
    """The example papers with the file's added, and what was added; InputError
    (naming the file) when the file is refused or gives no known paper."""
    found = import_likes(engine, data, name)
    if not found.paper_ids:
        titles = len(found.unmatched_titles)
        which = "its one title is not" if titles == 1 else f"none of its {titles} titles is"
        raise InputError(
            f"no paper from {name} is known here: it names no arXiv paper, and {which} "
            "among the papers we have"
        )
    merged, dropped = add_likes(current, found.paper_ids, MAX_EXAMPLES)
    return merged, Added(found, len(merged) - len(current), dropped)


def too_big(request: Request, fields: bool = False) -> str:
    """What a body over the cap is told; `fields`: the form has text fields besides
    the file, and which of them was too big is not known (the body was not read)."""
    announced = request.headers.get("content-length", "")
    size = f" ({int(announced) // 1024} KiB)" if announced.isdigit() else ""
    if fields:
        return (
            f"What was sent is too big{size}: up to {MAX_BODY_BYTES // 1024} KiB is read "
            "here, a library file included, so nothing was stored. Shorten what you typed, "
            "or upload a smaller export (one collection, or fewer items)."
        )
    return (
        f"The file is too big{size}: files up to {MAX_BODY_BYTES // 1024} KiB are read "
        "here. Export one collection, or fewer items, and upload that."
    )
