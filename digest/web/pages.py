"""The HTML pages: sign-up, confirm, manage, unsubscribe, view in browser.

Every form carries a CSRF token except the unsubscribe button, which posts to the
one-click URL that mailbox providers call without cookies (RFC 8058). A bad link
always gets a friendly page, never an error trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from digest import store, subscriptions
from digest.errors import InputError
from digest.matching import query_warnings
from digest.models import Subscriber
from digest.rendering import subscriber_links
from digest.states import WEEKDAYS, Frequency, SubscriberStatus, Weekday
from digest.web.accounts import (
    LinkError,
    MailBudgetSpent,
    ProfileInput,
    TooManyRequests,
    field_errors,
)
from digest.web.context import web
from digest.web.security import (
    CSRF_FIELD,
    DIGEST_VIEW_CSP,
    HONEYPOT_FIELD,
    MAX_BODY_BYTES,
    BodyTooLarge,
    honeypot_filled,
)
from digest.web.topics import split_profile
from digest.web.uploads import FIELD, chosen_file, merge_library, shown_name, too_big

T = TypeVar("T")

router = APIRouter(include_in_schema=False)

# What of a field is read: a longer value is cut there and marked with an ellipsis,
# so that too long stays too long (the checks strip spaces: a value cut after
# "07:30" and a space or CR would otherwise pass as "07:30"). The profile's text fields are checked by `subscriptions`, which counts what was
# typed (a textarea's newlines arrive as CRLF): cutting them here would make it
# report a wrong length, or lose the end of one that folds to fit. The body cap
# (`security.MAX_BODY_BYTES`) bounds them.
FIELD_LIMITS = {
    "email": 320,
    "keywords": MAX_BODY_BYTES,
    "interest": MAX_BODY_BYTES,
    "likes": MAX_BODY_BYTES,
    "timezone": 80,
    "send_at": 80,
}
CUT_MARK = "\N{HORIZONTAL ELLIPSIS}"
FREQUENCY_LABELS = {
    Frequency.DAILY: "Every day",
    Frequency.WEEKDAYS: "Monday to Friday",
    Frequency.WEEKLY: "Once a week",
}
DONE_MESSAGES = {
    "saved": "Your changes are saved.",
    "paused": "Your digest is paused. Resume it whenever you like.",
    "resumed": "Your digest is on again.",
    "sent": "If the address can receive mail, a fresh link is on its way.",
    "forgot": "That rating is cleared: your digest no longer counts it.",
    "forgot-none": "That rating was cleared already.",
    "cleared": "Your ratings are cleared: your digest no longer counts them.",
}
MAX_LISTED = 500  # ratings shown on the manage page, newest first
PROFILE_EXAMPLES = [
    ('diffusion, "reinforcement learning", robot*', "any of these words or phrases"),
    ('"large language model" AND reasoning NOT survey', "both terms, but not surveys"),
    ('author:"Yann LeCun", cat:cs.CL', "an author, or an arXiv category"),
    ("topic:diffusion-models", "a named topic from the list below"),
]


# ---------------------------------------------------------------- helpers


def render(
    request: Request, name: str, context: dict[str, Any], status: int = 200, forms: bool = True
) -> HTMLResponse:
    """Render `templates/web/<name>`; pages with forms get the CSRF cookie and token."""
    ctx = web(request)
    nonce = ctx.csrf.nonce(request)
    full = {
        "csp_nonce": request.state.csp_nonce,
        "csrf_field": CSRF_FIELD,
        "csrf_token": ctx.csrf.form_token(nonce) if forms else "",
        "base_url": ctx.settings.base_url,
        **context,
    }
    response = HTMLResponse(ctx.env.get_template(f"web/{name}").render(full), status_code=status)
    if forms:
        ctx.csrf.set_cookie(response, nonce)
    return response


def message_page(
    request: Request,
    title: str,
    text: str,
    status: int = 200,
    link: tuple[str, str] | None = None,
    warnings: list[str] | None = None,
    notes: list[str] | None = None,
) -> HTMLResponse:
    """A page with a title and a paragraph; `warnings` about the keywords typed, and
    `notes` on what an uploaded library gave."""
    context = {
        "title": title,
        "text": text,
        "link": link,
        "query_warnings": warnings or [],
        "upload_notes": notes or [],
    }
    return render(request, "message.html", context, status, forms=False)


def slips(keywords: str) -> list[str]:
    """What `digest check-query` warns about in a profile (a lower-case `and` read as
    a word): the profile is kept as typed, but the visitor should know."""
    return query_warnings(keywords) if keywords.strip() else []


LINK_PAGES = {
    "invalid": (
        "This link is not valid",
        "It may have been cut short or changed on the way. Use the link in the most "
        "recent email from us.",
        400,
    ),
    "expired": (
        "This link has expired",
        "For your safety links stop working after a while. Every digest carries fresh "
        "ones; to start over, sign up again.",
        400,
    ),
    "gone": (
        "Nothing here any more",
        "There is no subscription for this link. It may have been deleted.",
        410,
    ),
    "missing": (
        "Nothing at this link",
        "There is no digest for this link. Use the link in the most recent email from us.",
        404,
    ),
}


def link_error_page(request: Request, exc: LinkError) -> HTMLResponse:
    if exc.reason == "used":
        return message_page(
            request,
            "This link has been used",
            f"{str(exc)[:1].upper()}{str(exc)[1:]}. Nothing was changed.",
            400,
            ("/", "Go to the sign-up page"),
        )
    title, text, status = LINK_PAGES.get(exc.reason, LINK_PAGES["invalid"])
    return message_page(request, title, text, status, ("/", "Go to the sign-up page"))


def csrf_failed(request: Request) -> HTMLResponse:
    return message_page(
        request,
        "Please try again",
        "This form was open for too long or came from another site, so we did not act "
        "on it. Go back, reload the page and send it again.",
        403,
    )


class FormRefused(Exception):
    """A form body that cannot be read: malformed (400), or more fields or files
    than the form has (413). Its page says which, instead of blaming the CSRF check."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_form(request: Request, max_files: int = 0, max_fields: int = 200) -> FormData:
    """The form; FormRefused when the body is no form we read. A body over the cap is
    not malformed: `BodyTooLarge` goes on to the 413 (`BodyLimit`, or the upload
    pages' own). Announced too big is too big whatever the type: a body that is no
    form at all would otherwise be left unread and answered as an empty form."""
    announced = request.headers.get("content-length", "0")
    if not announced.isdigit() or int(announced) > MAX_BODY_BYTES:
        raise BodyTooLarge
    try:
        return await request.form(max_files=max_files, max_fields=max_fields)
    except BodyTooLarge:
        raise
    except StarletteHTTPException as exc:  # Starlette's multipart errors come as a 400
        detail = str(exc.detail)
        if detail.startswith("Too many") or "exceeded maximum size" in detail:
            raise FormRefused(
                413, "This form was sent with more fields or files than it has."
            ) from None
        raise FormRefused(400, "This form arrived malformed, so we could not read it.") from None
    except Exception:  # noqa: BLE001 - a malformed body is the visitor's problem, not a 500
        raise FormRefused(400, "This form arrived malformed, so we could not read it.") from None


async def checked_form(
    request: Request, max_files: int = 0, max_fields: int = 200
) -> FormData | Response:
    """A form POST's fields, or the page that refuses it: a body we cannot read
    (400, 413) or a failed CSRF check (403). `BodyTooLarge` passes through."""
    try:
        form = await read_form(request, max_files, max_fields)
    except FormRefused as exc:
        return message_page(
            request,
            "This form could not be read",
            f"{exc.message} Nothing was changed. Go back, reload the page and send it again.",
            exc.status,
        )
    if not web(request).csrf.check(request, form):
        return csrf_failed(request)
    return form


async def posted_form(request: Request, target: Callable[[], T]) -> tuple[FormData, T] | Response:
    """A form POST's fields and what its link names (`target`, run in a thread), or
    the page that refuses it: an unreadable form, a failed CSRF check or a link that
    is not valid."""
    form = await checked_form(request)
    if isinstance(form, Response):
        return form
    try:
        return form, await run_in_threadpool(target)
    except LinkError as exc:
        return link_error_page(request, exc)


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    limit = FIELD_LIMITS.get(name, 200)
    return value if len(value) <= limit else value[:limit] + CUT_MARK


def profile_input(form: FormData) -> ProfileInput:
    """The form's fields; the weekday select only counts for a weekly digest (it is
    always sent, shown or not)."""
    weekly = form_text(form, "frequency") in (Frequency.WEEKLY, "")
    return ProfileInput(
        keywords=form_text(form, "keywords"),
        topics=[t for t in form.getlist("topics") if isinstance(t, str)][:100],
        interest=form_text(form, "interest"),
        likes=form_text(form, "likes"),
        timezone=form_text(form, "timezone") or None,
        send_at=form_text(form, "send_at") or None,
        frequency=form_text(form, "frequency") or None,
        weekday=(form_text(form, "weekday") or None) if weekly else None,
        max_papers=form_text(form, "max_papers") or None,
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def form_context(request: Request, values: dict[str, Any], errors: dict[str, str]) -> dict:
    ctx = web(request)
    zones = ctx.timezones
    if values.get("timezone") and values["timezone"] not in zones:
        zones = [values["timezone"], *zones]  # never change a stored zone by accident
    return {
        "values": values,
        "errors": errors,
        "catalogue": ctx.catalogue,
        "timezones": zones,
        "frequencies": FREQUENCY_LABELS,
        "weekdays": WEEKDAYS,
        "examples": PROFILE_EXAMPLES,
        "honeypot_field": HONEYPOT_FIELD,
        "detect_timezone": False,
        "query_warnings": slips(str(values.get("keywords") or "")),
    }


def default_values(request: Request) -> dict[str, Any]:
    s = web(request).settings
    return {
        "email": "",
        "keywords": "",
        "interest": "",
        "likes": "",
        "topics": [],
        "timezone": s.timezone,
        "send_at": s.send_at,
        "frequency": Frequency.DAILY,
        "weekday": Weekday.MON,
        "max_papers": s.max_papers,
    }


def typed_values(form: FormData, data: ProfileInput) -> dict[str, Any]:
    return {
        "email": form_text(form, "email"),
        "keywords": data.keywords,
        "interest": data.interest or "",
        "likes": data.likes if isinstance(data.likes, str) else ", ".join(data.likes or []),
        "topics": data.topics,
        "timezone": data.timezone or "",
        "send_at": data.send_at or "",
        "frequency": data.frequency or Frequency.DAILY,
        "weekday": data.weekday or Weekday.MON,
        "max_papers": data.max_papers or "",
    }


def subscriber_values(request: Request, sub: Subscriber) -> dict[str, Any]:
    keywords, topics = split_profile(sub.keywords, web(request).catalogue)
    return {
        "email": sub.email,
        "keywords": keywords,
        "interest": sub.interest or "",
        "likes": ", ".join(sub.likes or []),
        "topics": topics,
        "timezone": sub.timezone,
        "send_at": sub.send_at,
        "frequency": sub.frequency,
        "weekday": sub.weekday or Weekday.MON,
        "max_papers": sub.max_papers,
    }


# ---------------------------------------------------------------- sign-up


@router.get("/", response_class=HTMLResponse)
async def signup_page(request: Request) -> Response:
    context = form_context(request, default_values(request), {})
    context["detect_timezone"] = True
    return render(request, "signup.html", signup_context(context))


@router.post("/subscribe")
async def signup_submit(request: Request, background: BackgroundTasks) -> Response:
    ctx = web(request)
    try:
        form = await checked_form(request, max_files=1)
    except BodyTooLarge:  # the library file or a field: say so on the page
        errors = {FIELD: too_big(request, fields=True)}
        context = form_context(request, default_values(request), errors)
        return render(request, "signup.html", signup_context(context), 413)
    if isinstance(form, Response):
        return form
    if honeypot_filled(form):
        return RedirectResponse("/check-your-inbox", status_code=303)
    data = profile_input(form)
    notes: list[str] = []
    upload = chosen_file(form)
    if upload is not None:
        name = shown_name(upload)
        raw = await upload.read()
        try:
            typed = subscriptions.check_likes(data.likes)
        except InputError as exc:
            context = form_context(request, typed_values(form, data), field_errors(exc))
            return render(request, "signup.html", signup_context(context), 400)
        try:
            likes, added = await run_in_threadpool(merge_library, ctx.engine, raw, name, typed)
        except InputError as exc:
            errors = {FIELD: f"Nothing was stored: {exc}"}
            context = form_context(request, typed_values(form, data), errors)
            return render(request, "signup.html", signup_context(context), 400)
        data = replace(data, likes=likes)
        notes = added.notes(name)
    try:
        # Stored before answering (a failed write is a 503 page, not a lost sign-up);
        # only the mail goes out after the answer.
        mail = await run_in_threadpool(
            ctx.accounts.signup, form_text(form, "email"), data, client_ip(request)
        )
    except TooManyRequests:
        return message_page(
            request,
            "Too many sign-ups",
            "We received many sign-ups from your network in the last hour. Please try again later.",
            429,
        )
    except MailBudgetSpent:
        return message_page(
            request,
            "We sent you a message recently",
            "A message for this address went out a short while ago: look for it in your "
            "inbox and in your spam folder (its link works for two days). To protect "
            f"mailboxes we send at most {ctx.settings.mail_limit_per_address} messages a "
            "day to one address, so please try again tomorrow if nothing arrived.",
            429,
            ("/", "Back to the sign-up page"),
        )
    except InputError as exc:
        context = form_context(request, typed_values(form, data), field_errors(exc))
        return render(request, "signup.html", signup_context(context), 400)
    background.add_task(ctx.mailer.send, mail)
    warnings = slips(data.keywords or "")
    if warnings or notes:  # shown now: the page a redirect leads to cannot know them
        return check_inbox_page(request, warnings, notes)
    return RedirectResponse("/check-your-inbox", status_code=303)


def signup_context(context: dict[str, Any]) -> dict[str, Any]:
    """The sign-up form's own extras: the library upload's size limit."""
    return {**context, "max_upload_kib": MAX_BODY_BYTES // 1024}


def check_inbox_page(
    request: Request, warnings: list[str] | None = None, notes: list[str] | None = None
) -> HTMLResponse:
    return message_page(
        request,
        "Check your inbox",
        "If the address can receive mail, we have sent it a message. Follow the link "
        "in it to confirm your subscription (or, if you are already subscribed, to "
        "manage it). A confirmation link works for two days.",
        warnings=warnings,
        notes=notes,
    )


@router.get("/check-your-inbox", response_class=HTMLResponse)
async def check_inbox(request: Request) -> Response:
    return check_inbox_page(request)


# ---------------------------------------------------------------- confirm


@router.get("/confirm/{token}", response_class=HTMLResponse)
async def confirm_page(request: Request, token: str) -> Response:
    try:
        sub = await run_in_threadpool(web(request).accounts.confirm_target, token)
    except LinkError as exc:
        return link_error_page(request, exc)
    keywords, topics = split_profile(sub.keywords, web(request).catalogue)
    labels = {t.name: t.label for t in web(request).catalogue}
    context = {
        "email": sub.email,
        "token": token,
        "sub": sub,
        "keywords": keywords,
        "topics": [labels.get(t, t) for t in topics],
        "frequencies": FREQUENCY_LABELS,
        # Each later sign-up for the address bumps the version: say the profile changed.
        "replaced": sub.token_version > 0,
        "query_warnings": slips(sub.keywords),
    }
    return render(request, "confirm.html", context)


@router.post("/confirm/{token}", response_class=HTMLResponse)
async def confirm_submit(request: Request, token: str) -> Response:
    ctx = web(request)
    form = await checked_form(request)
    if isinstance(form, Response):
        return form
    try:
        sub = await run_in_threadpool(ctx.accounts.confirm, token)
    except LinkError as exc:
        return link_error_page(request, exc)
    manage = subscriber_links(ctx.settings, sub.email, None, sub.id)["manage"]
    return render(
        request,
        "confirmed.html",
        {"sub": sub, "manage_url": manage, "frequencies": FREQUENCY_LABELS},
        forms=False,
    )


# ---------------------------------------------------------------- manage


async def manage_view(
    request: Request,
    token: str,
    sub: Subscriber,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    upload_notes: list[str] | None = None,
) -> HTMLResponse:
    """The manage page; `values` and `errors` of a form sent back, what an upload did."""
    done = request.query_params.get("done", "")
    context = form_context(request, values or subscriber_values(request, sub), errors or {})
    ratings = await run_in_threadpool(store.list_ratings, web(request).engine, sub.id or 0)
    context.update(
        sub=sub,
        token=token,
        notice=DONE_MESSAGES.get(done, ""),
        ratings=ratings[:MAX_LISTED],
        rating_count=len(ratings),
        upload_notes=upload_notes or [],
        max_upload_kib=MAX_BODY_BYTES // 1024,
    )
    return render(request, "manage.html", context, status)


@router.get("/manage/{token}", response_class=HTMLResponse)
async def manage_page(request: Request, token: str) -> Response:
    try:
        sub = await run_in_threadpool(web(request).accounts.manage_subscriber, token)
    except LinkError as exc:
        return link_error_page(request, exc)
    return await manage_view(request, token, sub)


@router.post("/manage/{token}", response_class=HTMLResponse)
async def manage_save(request: Request, token: str) -> Response:
    ctx = web(request)
    form = await checked_form(request)
    if isinstance(form, Response):
        return form
    data = profile_input(form)
    try:
        await run_in_threadpool(ctx.accounts.update, token, data)
    except LinkError as exc:
        return link_error_page(request, exc)
    except InputError as exc:
        sub = await run_in_threadpool(ctx.accounts.manage_subscriber, token)
        values = {**typed_values(form, data), "email": sub.email}
        return await manage_view(request, token, sub, values, field_errors(exc), 400)
    return RedirectResponse(f"/manage/{token}?done=saved", status_code=303)


@router.post("/manage/{token}/{action}", response_class=HTMLResponse)
async def manage_action(
    request: Request, token: str, action: str, background: BackgroundTasks
) -> Response:
    ctx = web(request)
    if action not in {"pause", "resume", "resend", "delete"}:
        return message_page(request, "Page not found", "There is nothing at this address.", 404)
    form = await checked_form(request)
    if isinstance(form, Response):
        return form
    try:
        if action == "delete":
            if form.get("confirm_delete") != "yes":
                sub = await run_in_threadpool(ctx.accounts.manage_subscriber, token)
                errors = {"delete": "Tick the box to confirm that everything should go."}
                return await manage_view(request, token, sub, errors=errors, status=400)
            await run_in_threadpool(ctx.accounts.delete_account, token)
            return message_page(
                request,
                "Everything is deleted",
                "Your address, your profile and every digest we kept for you are gone. "
                "Old links in your mailbox no longer lead anywhere.",
                link=("/", "Sign up again"),
            )
        if action == "resend":
            mail = await run_in_threadpool(ctx.accounts.resend, token)
            if mail is not None:
                background.add_task(ctx.mailer.send, mail)
            return RedirectResponse(f"/manage/{token}?done=sent", status_code=303)
        status = SubscriberStatus.PAUSED if action == "pause" else SubscriberStatus.ACTIVE
        await run_in_threadpool(ctx.accounts.set_status, token, status)
    except LinkError as exc:
        return link_error_page(request, exc)
    done = "paused" if action == "pause" else "resumed"
    return RedirectResponse(f"/manage/{token}?done={done}", status_code=303)


# ---------------------------------------------------------------- unsubscribe


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_page(request: Request, token: str) -> Response:
    accounts = web(request).accounts
    try:
        address = await run_in_threadpool(accounts.unsubscribe_target, token)
    except LinkError as exc:
        return link_error_page(request, exc)
    return render(request, "unsubscribe.html", {"email": address, "token": token}, forms=False)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_now(request: Request, token: str) -> Response:
    """RFC 8058 one-click: authenticated by the token alone, no cookie, no redirect."""
    ctx = web(request)
    try:
        address = await run_in_threadpool(ctx.accounts.unsubscribe, token)
    except LinkError as exc:
        return link_error_page(request, exc)
    manage = subscriber_links(ctx.settings, address, None)["manage"]
    return render(
        request, "unsubscribed.html", {"email": address, "manage_url": manage}, forms=False
    )


# ---------------------------------------------------------------- view in browser


@router.get("/view/{token}", response_class=HTMLResponse)
async def view_digest(request: Request, token: str) -> Response:
    try:
        html = await run_in_threadpool(web(request).accounts.digest_html, token)
    except LinkError as exc:
        return link_error_page(request, exc)
    return HTMLResponse(html, headers={"content-security-policy": DIGEST_VIEW_CSP})
