"""Example papers from a reference library, uploaded on the manage page (the sign-up
page takes one too: `pages.signup_submit`). What is read, and how, is
`digest.web.uploads`; this route adds the papers found to a subscriber's example
papers and answers with the manage page saying what it did, or why it changed nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from digest.errors import InputError
from digest.web.accounts import LinkError, ProfileInput
from digest.web.context import WebContext, web
from digest.web.pages import checked_form, link_error_page, manage_view
from digest.web.security import BodyTooLarge
from digest.web.uploads import FIELD, Added, chosen_file, merge_library, shown_name, too_big

router = APIRouter(include_in_schema=False)


def add_from_library(ctx: WebContext, token: str, data: bytes, name: str) -> Added:
    """Read the file, resolve it, add its papers: one `accounts.update`, or nothing
    at all (InputError) when the file gives no paper."""
    sub = ctx.accounts.manage_subscriber(token)
    merged, added = merge_library(ctx.engine, data, name, list(sub.likes or []))
    if added.new:
        ctx.accounts.update(token, ProfileInput(keywords=None, topics=None, likes=merged))
    return added


@router.post("/manage/{token}/examples")
async def upload_examples(request: Request, token: str) -> Response:
    ctx = web(request)
    try:
        form = await checked_form(request, max_files=1, max_fields=20)
    except BodyTooLarge:
        return await _refused(request, token, too_big(request), 413)
    if isinstance(form, Response):
        return form
    upload = chosen_file(form)
    if upload is None:
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
