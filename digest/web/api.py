"""The JSON API: the same actions as the pages, for scripts and other front ends.

Links' tokens are the credentials (in the path), as on the pages. Sign-up answers
202 with the same body whether or not the address is known.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from digest.errors import InputError
from digest.models import Subscriber
from digest.states import SubscriberStatus
from digest.web.accounts import (
    LinkError,
    MailBudgetSpent,
    ProfileInput,
    TooManyRequests,
    field_errors,
)
from digest.web.context import WebContext, web
from digest.web.preview import PreviewGate, Refused, error_json
from digest.web.topics import split_profile

router = APIRouter(prefix="/api", tags=["subscriptions"])

TopicName = Annotated[str, StringConstraints(max_length=64)]
ACCEPTED_MESSAGE = (
    "If the address can receive mail, a message is on its way: a confirmation link, "
    "or the manage link when the address is already subscribed."
)


def _not_a_bool(value: Any) -> Any:
    """JSON `true` is no count: pydantic would read it as 1 (and `false` as 0)."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number from 1 to 500, not true or false")
    return value


PaperCount = Annotated[int, BeforeValidator(_not_a_bool)]


class RequestBody(BaseModel):
    """A JSON body a client sends: a field we do not know is refused (422 naming it),
    not ignored, so a typo (`send-at`, `max_paper`) never answers success while
    storing the defaults."""

    model_config = ConfigDict(extra="forbid")


class ScheduleFields(RequestBody):
    timezone: str | None = Field(None, max_length=64, examples=["Europe/Berlin"])
    send_at: str | None = Field(
        None, max_length=5, description="HH:MM, 24 hours", examples=["07:30"]
    )
    frequency: Literal["daily", "weekly", "weekdays"] | None = None
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = Field(
        None, description="For weekly digests; Monday when omitted."
    )
    max_papers: PaperCount | None = Field(None, ge=1, le=500)


PaperId = Annotated[str, StringConstraints(max_length=200)]
INTEREST_DOC = (
    "A plain-English interest (what you work on, and what you do not want); "
    "alone, or beside keywords to rank what they find."
)
LIKES_DOC = "arXiv ids of example papers you liked; similar papers rank higher."


class SignupIn(ScheduleFields):
    email: str = Field(max_length=320, examples=["ada@example.org"])
    keywords: str = Field(
        "",
        max_length=4000,
        description="The profile, in the profile language; may be empty when topics, "
        "an interest or example papers are given.",
        examples=['diffusion, "reinforcement learning"'],
    )
    topics: list[TopicName] = Field(default_factory=list, max_length=50)
    interest: str = Field(
        "",
        max_length=4000,
        description=INTEREST_DOC,
        examples=["I work on reward models for aligning LLMs; not interested in jailbreaks"],
    )
    likes: list[PaperId] = Field(
        default_factory=list, max_length=200, description=LIKES_DOC, examples=[["2305.18290"]]
    )


class ProfilePatch(ScheduleFields):
    keywords: str | None = Field(None, max_length=4000)
    topics: list[TopicName] | None = Field(None, max_length=50)
    interest: str | None = Field(None, max_length=4000, description=INTEREST_DOC + ' "" clears it.')
    likes: list[PaperId] | None = Field(None, max_length=200, description=LIKES_DOC)


class PreviewIn(RequestBody):
    keywords: str = Field("", max_length=4000)
    topics: list[TopicName] = Field(default_factory=list, max_length=50)
    interest: str = Field("", max_length=4000, description=INTEREST_DOC)
    likes: list[PaperId] = Field(default_factory=list, max_length=200, description=LIKES_DOC)
    max_papers: PaperCount = Field(20, ge=1, le=500)


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    message: str = ACCEPTED_MESSAGE


class ErrorOut(BaseModel):
    error: str
    field: str | None = None
    position: int | None = None


class SubscriptionOut(BaseModel):
    email: str
    status: str
    profile: str
    keywords: str
    topics: list[str]
    interest: str | None
    likes: list[str]
    timezone: str
    send_at: str
    frequency: str
    weekday: str | None
    max_papers: int
    created_at: datetime | None
    confirmed_at: datetime | None


class Deleted(BaseModel):
    deleted: bool = True


class Unsubscribed(BaseModel):
    status: Literal["unsubscribed"] = "unsubscribed"


class PreviewPaper(BaseModel):
    id: str
    title: str
    url: str | None
    why: str
    score: float


class PreviewOut(BaseModel):
    ok: bool
    days: int
    considered: int
    matched: int
    papers: list[PreviewPaper]
    # Likely slips in the profile ("'and' is read as a word; write AND ..."), in order.
    warnings: list[str] = []


class TopicOut(BaseModel):
    name: str
    label: str
    query: str
    description: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad input, or a forged or expired link"},
}
LINK_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    410: {"model": ErrorOut, "description": "The link's subscription no longer exists"},
}


def error(exc: InputError) -> JSONResponse:
    """400 with the message; 410 for a link whose subscription is gone."""
    if isinstance(exc, LinkError):
        return JSONResponse({"error": str(exc)}, status_code=410 if exc.reason == "gone" else 400)
    body = error_json(exc)
    fields = field_errors(exc)
    name = next(iter(fields))
    return JSONResponse(
        {
            # The field's message, without the CLI's `--flag:` prefix; a query's own
            # (its position is a field of the answer).
            "error": body["error"] if body["position"] is not None else fields[name],
            "field": None if name == "form" else name,
            "position": body["position"],
        },
        status_code=400,
    )


def subscription_json(ctx: WebContext, sub: Subscriber) -> dict[str, Any]:
    keywords, topics = split_profile(sub.keywords, ctx.catalogue)
    return SubscriptionOut(
        email=sub.email,
        status=sub.status,
        profile=sub.keywords,
        keywords=keywords,
        topics=topics,
        interest=sub.interest,
        likes=list(sub.likes or []),
        timezone=sub.timezone,
        send_at=sub.send_at,
        frequency=sub.frequency,
        weekday=sub.weekday,
        max_papers=sub.max_papers,
        created_at=sub.created_at,
        confirmed_at=sub.confirmed_at,
    ).model_dump(mode="json")


def _input(
    body: ScheduleFields,
    keywords: str | None,
    topics: list[str] | None,
    interest: str | None = None,
    likes: list[str] | None = None,
) -> ProfileInput:
    return ProfileInput(
        keywords=keywords,
        topics=topics,
        interest=interest,
        likes=likes,
        timezone=body.timezone,
        send_at=body.send_at,
        frequency=body.frequency,
        weekday=body.weekday,
        max_papers=body.max_papers,
    )


@router.post(
    "/subscriptions",
    status_code=202,
    response_model=Accepted,
    responses={
        **ERRORS,
        429: {
            "model": ErrorOut,
            "description": "Too many sign-ups from the network, or the address was sent "
            "its messages for today (field: email)",
        },
    },
)
def sign_up(request: Request, body: SignupIn, background: BackgroundTasks) -> Any:
    """Start a subscription: a confirmation email goes to the address (double opt-in)."""
    ctx = web(request)
    ip = request.client.host if request.client else "unknown"
    try:
        # Stored before answering; a failed write answers 503, never a lost 202.
        data = _input(body, body.keywords, body.topics, body.interest, body.likes)
        mail = ctx.accounts.signup(body.email, data, ip)
    except MailBudgetSpent as exc:
        return JSONResponse({"error": str(exc), "field": "email"}, status_code=429)
    except TooManyRequests as exc:
        return JSONResponse({"error": str(exc)}, status_code=429)
    except InputError as exc:
        return error(exc)
    background.add_task(ctx.mailer.send, mail)
    return Accepted()


@router.post("/confirm/{token}", response_model=SubscriptionOut, responses=LINK_ERRORS)
def confirm(request: Request, token: str) -> Any:
    """Confirm a sign-up with the token from the confirmation email."""
    ctx = web(request)
    try:
        return subscription_json(ctx, ctx.accounts.confirm(token))
    except InputError as exc:
        return error(exc)


@router.get("/manage/{token}", response_model=SubscriptionOut, responses=LINK_ERRORS)
def get_subscription(request: Request, token: str) -> Any:
    ctx = web(request)
    try:
        return subscription_json(ctx, ctx.accounts.manage_subscriber(token))
    except InputError as exc:
        return error(exc)


@router.patch("/manage/{token}", response_model=SubscriptionOut, responses=LINK_ERRORS)
def change_subscription(request: Request, token: str, body: ProfilePatch) -> Any:
    """Change the profile or the schedule; fields left out stay as they are."""
    ctx = web(request)
    try:
        data = _input(body, body.keywords, body.topics, body.interest, body.likes)
        sub = ctx.accounts.update(token, data)
        return subscription_json(ctx, sub)
    except InputError as exc:
        return error(exc)


@router.post("/manage/{token}/pause", response_model=SubscriptionOut, responses=LINK_ERRORS)
def pause(request: Request, token: str) -> Any:
    ctx = web(request)
    try:
        return subscription_json(ctx, ctx.accounts.set_status(token, SubscriberStatus.PAUSED))
    except InputError as exc:
        return error(exc)


@router.post("/manage/{token}/resume", response_model=SubscriptionOut, responses=LINK_ERRORS)
def resume(request: Request, token: str) -> Any:
    ctx = web(request)
    try:
        return subscription_json(ctx, ctx.accounts.set_status(token, SubscriberStatus.ACTIVE))
    except InputError as exc:
        return error(exc)


@router.post(
    "/manage/{token}/resend", status_code=202, response_model=Accepted, responses=LINK_ERRORS
)
def resend(request: Request, token: str, background: BackgroundTasks) -> Any:
    """Mail a fresh manage link to the subscription's own address."""
    ctx = web(request)
    try:
        mail = ctx.accounts.resend(token)
    except InputError as exc:
        return error(exc)
    if mail is not None:
        background.add_task(ctx.mailer.send, mail)
    return Accepted()


# name="delete": the route's OpenAPI operation id and summary as published.
@router.delete("/manage/{token}", response_model=Deleted, responses=LINK_ERRORS, name="delete")
def delete_subscription(request: Request, token: str) -> Any:
    """Delete everything stored about the subscriber: profile, address, digests."""
    ctx = web(request)
    try:
        ctx.accounts.delete_account(token)
    except InputError as exc:
        return error(exc)
    return Deleted()


@router.post("/unsubscribe/{token}", response_model=Unsubscribed, responses=ERRORS)
def unsubscribe(request: Request, token: str) -> Any:
    ctx = web(request)
    try:
        ctx.accounts.unsubscribe(token)
    except InputError as exc:
        return error(exc)
    return Unsubscribed()


PREVIEW_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    429: {"model": ErrorOut, "description": "Too many previews from this address"},
    503: {"model": ErrorOut, "description": "The preview is busy or took too long"},
}


@router.post("/preview", response_model=PreviewOut, responses=PREVIEW_ERRORS)
async def preview_profile(request: Request, body: Annotated[PreviewIn, Body()]) -> Any:
    """Which of the last days' papers this profile would have matched. Limited per
    client (429) and run on a bounded worker (503 when busy), with Retry-After."""
    ctx = web(request)
    gate: PreviewGate = request.app.state.preview
    ip = request.client.host if request.client else "unknown"
    try:
        data = ProfileInput(
            keywords=body.keywords, topics=body.topics, interest=body.interest, likes=body.likes
        )
        profile = data.profile(ctx.catalogue)
        return await gate.run(ip, profile, body.max_papers, body.interest, body.likes)
    except Refused as exc:
        return JSONResponse(
            {"error": exc.message},
            status_code=exc.status,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except InputError as exc:
        return error(exc)


@router.get("/topics", response_model=list[TopicOut])
def topics(request: Request) -> Any:
    """The named topics a profile can include as `topic:NAME`."""
    return [
        TopicOut(name=t.name, label=t.label, query=t.query, description=t.description)
        for t in web(request).catalogue
    ]
