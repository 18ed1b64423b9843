"""A subscriber's ratings ("more / less like this"): the manage page's two clear
buttons, and the JSON API that lists, adds, undoes and clears them.

Both are authenticated by the manage link's token, like the rest of the manage page
and `/api/manage/{token}`. Clearing one rating and clearing them all are two routes:
a one-paper form that lost its paper can only fail, never clear everything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from digest import store
from digest.errors import InputError
from digest.models import Subscriber
from digest.states import Vote
from digest.web.api import LINK_ERRORS, ErrorOut, RequestBody, error
from digest.web.context import WebContext, web
from digest.web.pages import message_page, posted_form

MAX_PAPER_ID = 200  # the longest id a feedback link carries (digest.tokens)

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["ratings"])

PaperIdPath = Annotated[str, Path(min_length=1, max_length=MAX_PAPER_ID)]


# ---------------------------------------------------------------- manage page


async def _posted(request: Request, token: str) -> tuple[FormData, Subscriber] | Response:
    """A manage-page POST's form and subscriber, or the page that refuses it."""
    accounts = web(request).accounts
    return await posted_form(request, lambda: accounts.manage_subscriber(token))


@pages.post("/manage/{token}/ratings/forget")
async def forget_one(request: Request, token: str) -> Response:
    """The "Clear" button beside one rating: that paper's rating, nothing else."""
    posted = await _posted(request, token)
    if isinstance(posted, Response):
        return posted
    form, sub = posted
    paper = form.get("paper")
    if not isinstance(paper, str) or not 0 < len(paper) <= MAX_PAPER_ID:
        return message_page(
            request,
            "Nothing was cleared",
            "The form did not say which rating to clear. Go back, reload the page and "
            "press the button beside the rating again.",
            400,
            (f"/manage/{token}#ratings", "Back to your ratings"),
        )
    gone = await run_in_threadpool(store.undo_rating, web(request).engine, sub.id or 0, paper)
    done = "forgot" if gone else "forgot-none"
    return RedirectResponse(f"/manage/{token}?done={done}#ratings", status_code=303)


@pages.post("/manage/{token}/ratings/clear")
async def clear_all(request: Request, token: str) -> Response:
    """The "Clear all ratings" button."""
    posted = await _posted(request, token)
    if isinstance(posted, Response):
        return posted
    await run_in_threadpool(store.clear_ratings, web(request).engine, posted[1].id or 0, None)
    return RedirectResponse(f"/manage/{token}?done=cleared#ratings", status_code=303)


# ---------------------------------------------------------------- JSON API


class RatingOut(BaseModel):
    paper_id: str
    title: str | None = Field(description="The paper's title; null when it is no longer stored.")
    vote: Literal["more", "less"]
    created_at: datetime


class RatingIn(RequestBody):
    paper_id: str = Field(min_length=1, max_length=MAX_PAPER_ID, examples=["2305.18290"])
    vote: Literal["more", "less"] = Field(description='"more like this" or "less like this"')


class Cleared(BaseModel):
    cleared: int = Field(description="How many ratings were forgotten.")


RATING_ERRORS: dict[int | str, dict[str, Any]] = {
    **LINK_ERRORS,
    404: {"model": ErrorOut, "description": "No stored paper has this id (field: paper_id)"},
}


def _subscriber(ctx: WebContext, token: str) -> Subscriber:
    return ctx.accounts.manage_subscriber(token)


def _list(ctx: WebContext, token: str) -> list[dict[str, Any]]:
    sub = _subscriber(ctx, token)
    return [
        RatingOut(
            paper_id=r.paper_id,
            title=r.title,
            vote=Vote.of_sign(r.vote).value,
            created_at=r.created_at,
        ).model_dump(mode="json")
        for r in store.list_ratings(ctx.engine, sub.id or 0)
    ]


def _rate(ctx: WebContext, token: str, body: RatingIn) -> dict[str, Any] | None:
    """The rating as recorded; None when no stored paper has the id."""
    sub = _subscriber(ctx, token)
    paper = store.papers_by_ids(ctx.engine, [body.paper_id]).get(body.paper_id)
    if paper is None:
        return None
    store.record_rating(ctx.engine, sub.id or 0, paper.id, Vote(body.vote).sign)
    mine = next(r for r in store.list_ratings(ctx.engine, sub.id or 0) if r.paper_id == paper.id)
    return RatingOut(
        paper_id=paper.id, title=paper.title, vote=body.vote, created_at=mine.created_at
    ).model_dump(mode="json")


def _clear(ctx: WebContext, token: str, paper_id: str | None) -> int:
    sub = _subscriber(ctx, token)
    return store.clear_ratings(ctx.engine, sub.id or 0, None if paper_id is None else [paper_id])


@api.get("/manage/{token}/ratings", response_model=list[RatingOut], responses=LINK_ERRORS)
async def list_ratings(request: Request, token: str) -> Any:
    """The subscriber's ratings, newest first."""
    try:
        return await run_in_threadpool(_list, web(request), token)
    except InputError as exc:
        return error(exc)


@api.post("/manage/{token}/ratings", response_model=RatingOut, responses=RATING_ERRORS)
async def rate(request: Request, token: str, body: RatingIn) -> Any:
    """Rate a stored paper, as its "more / less like this" link does: one rating per
    paper (a repeat changes nothing; the other vote replaces it)."""
    try:
        rated = await run_in_threadpool(_rate, web(request), token, body)
    except InputError as exc:
        return error(exc)
    if rated is None:
        return JSONResponse(
            {"error": "no stored paper has this id", "field": "paper_id", "position": None},
            status_code=404,
        )
    return rated


@api.delete("/manage/{token}/ratings", response_model=Cleared, responses=LINK_ERRORS)
async def clear_ratings(request: Request, token: str) -> Any:
    """Forget every rating."""
    try:
        return Cleared(cleared=await run_in_threadpool(_clear, web(request), token, None))
    except InputError as exc:
        return error(exc)


@api.delete(
    "/manage/{token}/ratings/{paper_id:path}", response_model=Cleared, responses=LINK_ERRORS
)
async def undo_rating(request: Request, token: str, paper_id: PaperIdPath) -> Any:
    """Forget the rating of one paper (`cleared` is 0 when it had none). Old-style
    arXiv ids keep their slash: `/ratings/hep-th/9901001`."""
    try:
        return Cleared(cleared=await run_in_threadpool(_clear, web(request), token, paper_id))
    except InputError as exc:
        return error(exc)
