""" "More like this" / "less like this": the links on every card of a digest.

A link's GET only shows a page with one button; the button's POST records the vote.
Link scanners and mail prefetchers (which fetch every URL of a message, some in a
headless browser) therefore record nothing. The page has no script that submits the
form by itself: scanners that run JavaScript would submit it too, and one extra
click is the price of a rating only the reader gives.

The token (in the path) names the subscriber row, its `token_version` and the paper;
a forged or altered token, one made for a deleted row, or one voided by a newer
sign-up (token_version bumped) records nothing and gets a 4xx page. The POSTs carry
the app's CSRF token like every other form. Recording is idempotent (one rating per
subscriber and paper), so a replayed POST leaves one rating; undo deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from digest import store
from digest.models import Paper, Subscriber
from digest.rendering import subscriber_links
from digest.states import Vote
from digest.tokens import TokenError, read_feedback_token
from digest.web.accounts import MAX_ID, LinkError
from digest.web.context import WebContext, web
from digest.web.pages import link_error_page, message_page, posted_form, render

router = APIRouter(include_in_schema=False)

VOTE_WORDS = {Vote.MORE: "more like this", Vote.LESS: "less like this"}


@dataclass(frozen=True)
class Rated:
    """The subscriber and paper a valid feedback link names."""

    sub: Subscriber
    paper: Paper

    @property
    def subscriber_id(self) -> int:
        assert self.sub.id is not None
        return self.sub.id


def feedback_target(ctx: WebContext, token: str) -> Rated:
    """Check the token against the stored rows; LinkError (a 4xx page) otherwise."""
    try:
        target = read_feedback_token(ctx.settings.secret_key, token)
    except TokenError as exc:
        raise LinkError(str(exc), "expired" if "expired" in str(exc) else "invalid") from None
    if target.subscriber_id > MAX_ID:
        raise LinkError("there is no subscription for this link any more", "gone")
    sub = store.subscriber_by_id(ctx.engine, target.subscriber_id)
    if sub is None:
        raise LinkError("there is no subscription for this link any more", "gone")
    if sub.token_version != target.token_version:
        raise LinkError("this link was replaced by a newer sign-up", "used")
    paper = store.papers_by_ids(ctx.engine, [target.paper_id]).get(target.paper_id)
    if paper is None:
        raise LinkError("this paper is no longer stored", "missing")
    return Rated(sub, paper)


def vote_of(value: object) -> Vote | None:
    return Vote(value) if isinstance(value, str) and value in Vote._value2member_map_ else None


def _bad_vote(request: Request) -> HTMLResponse:
    return message_page(
        request,
        "This link is not valid",
        "It may have been cut short on the way. Use the link in the digest email.",
        400,
    )


def _manage_url(ctx: WebContext, rated: Rated) -> str:
    return subscriber_links(ctx.settings, rated.sub.email, None, rated.sub.id)["manage"]


def _current(ctx: WebContext, rated: Rated) -> Vote | None:
    sign = store.get_rating(ctx.engine, rated.subscriber_id, rated.paper.id)
    return None if sign is None else Vote.of_sign(sign)


def _page(ctx: WebContext, token: str, vote: Vote, rated: Rated) -> dict[str, object]:
    return {
        "token": token,
        "vote": vote,
        "words": VOTE_WORDS,
        "paper": rated.paper,
        "manage_url": _manage_url(ctx, rated),
    }


async def _posted(request: Request, token: str) -> tuple[FormData, Rated] | Response:
    """A POST's form and target, or the page that refuses it (CSRF, a bad link)."""
    ctx = web(request)
    return await posted_form(request, lambda: feedback_target(ctx, token))


@router.get("/feedback/{token}", response_class=HTMLResponse)
async def feedback_page(request: Request, token: str) -> Response:
    """Shows what the click would record, with the button that records it. Changes
    nothing: this is what a link scanner sees."""
    ctx = web(request)
    vote = vote_of(request.query_params.get("vote"))
    if vote is None:
        return _bad_vote(request)
    try:
        rated = await run_in_threadpool(feedback_target, ctx, token)
        current = await run_in_threadpool(_current, ctx, rated)
    except LinkError as exc:
        return link_error_page(request, exc)
    return render(request, "feedback.html", {**_page(ctx, token, vote, rated), "current": current})


@router.post("/feedback/{token}", response_class=HTMLResponse)
async def feedback_record(request: Request, token: str) -> Response:
    """The button: records the vote once (a replay changes nothing)."""
    ctx = web(request)
    posted = await _posted(request, token)
    if isinstance(posted, Response):
        return posted
    form, rated = posted
    vote = vote_of(form.get("vote"))
    if vote is None:
        return _bad_vote(request)
    await run_in_threadpool(
        store.record_rating, ctx.engine, rated.subscriber_id, rated.paper.id, vote.sign
    )
    return render(request, "feedback_done.html", _page(ctx, token, vote, rated))


@router.post("/feedback/{token}/undo", response_class=HTMLResponse)
async def feedback_undo(request: Request, token: str) -> Response:
    ctx = web(request)
    posted = await _posted(request, token)
    if isinstance(posted, Response):
        return posted
    rated = posted[1]
    undone = await run_in_threadpool(
        store.undo_rating, ctx.engine, rated.subscriber_id, rated.paper.id
    )
    title = rated.paper.title[:300]
    return message_page(  # a second undo (a replay, a back button) says nothing was left
        request,
        "Rating undone" if undone else "Nothing to undo",
        f"Your digest no longer counts your rating of “{title}”."
        if undone
        else f"You have no rating of “{title}” now: it was undone or cleared already.",
        link=(_manage_url(ctx, rated), "See all your ratings"),
    )
