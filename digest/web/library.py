"""Example papers from a reference library, uploaded on the manage page: a BibTeX
file or a Zotero export (BibTeX, Zotero RDF, CSL JSON, CSV). The file is read and
resolved by `digest.bibliography` exactly as `digest set --like-file` reads it, and
the papers found join the subscriber's example papers as `--like-file` adds them.

The upload is a multipart POST under the app's body cap (`MAX_BODY_BYTES`), counted
while it is read (`security.BodyLimit`): a bigger one is refused without reading
past the cap, and this route says so on the manage page (413) instead of a bare
answer. A file that is too big, unreadable, or names no paper changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from digest.bibliography import LikeImport, add_likes, import_likes
from digest.errors import InputError
from digest.matching.interest import MAX_EXAMPLES
from digest.web.accounts import LinkError, ProfileInput
from digest.web.context import WebContext, web
from digest.web.pages import csrf_failed, link_error_page, manage_view
from digest.web.security import MAX_BODY_BYTES, BodyTooLarge

router = APIRouter(include_in_schema=False)

FIELD = "library"
_UPLOAD_PATH = re.compile(r"/manage/[^/]+/examples")
_UNSAFE_NAME = re.compile(r"[^\w .,()+-]")


def is_upload(path: str) -> bool:
    """The paths whose too-big bodies this module explains (see `BodyLimit`)."""
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


def shown_name(upload: UploadFile) -> str:
    """The file's name as the person chose it, safe to repeat back: no folders, no
    control characters, at most 80 characters."""
    base = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE_NAME.sub("_", base)[:80] or "the file"


def add_from_library(ctx: WebContext, token: str, data: bytes, name: str) -> Added:
    """Read the file, resolve it, add its papers: one `accounts.update`, or nothing
    at all (InputError) when the file gives no paper."""
    sub = ctx.accounts.manage_subscriber(token)
    found = import_likes(ctx.engine, data, name)
    if not found.paper_ids:
        raise InputError(
            f"no paper from {name} is known here: it names no arXiv paper, and none of "
            f"its {len(found.unmatched_titles)} titles is among the papers we have"
        )
    current = list(sub.likes or [])
    merged, dropped = add_likes(current, found.paper_ids, MAX_EXAMPLES)
    new = len(merged) - len(current)
    if new:
        ctx.accounts.update(token, ProfileInput(keywords=None, topics=None, likes=merged))
    return Added(found, new, dropped)


def too_big(request: Request) -> str:
    announced = request.headers.get("content-length", "")
    size = f" ({int(announced) // 1024} KiB)" if announced.isdigit() else ""
    return (
        f"The file is too big{size}: files up to {MAX_BODY_BYTES // 1024} KiB are read "
        "here. Export one collection, or fewer items, and upload that."
    )


@router.post("/manage/{token}/examples")
async def upload_examples(request: Request, token: str) -> Response:
    ctx = web(request)
    form: FormData | None
    try:
        form = await request.form(max_files=1, max_fields=20)
    except BodyTooLarge:
        return await _refused(request, token, too_big(request), 413)
    except Exception:  # noqa: BLE001 - a malformed body: the form check below answers
        form = None
    if form is None or not ctx.csrf.check(request, form):
        return csrf_failed(request)
    upload = form.get(FIELD)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _refused(request, token, "Choose a file to upload first.", 400)
    name = shown_name(upload)
    data = await upload.read()
    try:
        added = await run_in_threadpool(add_from_library, ctx, token, data, name)
    except LinkError as exc:
        return link_error_page(request, exc)
    except InputError as exc:
        return await _refused(request, token, f"Nothing was changed: {exc}", 400)
    sub = await run_in_threadpool(ctx.accounts.manage_subscriber, token)
    return await manage_view(request, token, sub, upload_notes=added.notes(name))


async def _refused(request: Request, token: str, message: str, status: int) -> Response:
    """The manage page as it was, with why the upload changed nothing."""
    try:
        sub = await run_in_threadpool(web(request).accounts.manage_subscriber, token)
    except LinkError as exc:
        return link_error_page(request, exc)
    return await manage_view(request, token, sub, errors={FIELD: message}, status=status)
