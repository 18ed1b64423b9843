"""What keeps the web app safe to put on the internet: security headers with a
per-request CSP nonce, a cap on request bodies, CSRF tokens for forms, the honeypot
field.

Forms use a signed double-submit token: the cookie holds a random nonce, the form
holds that nonce signed with the secret key. A cross-site page can neither read the
cookie nor forge the signature, and the Lax cookie is not sent on cross-site POSTs.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "digest_csrf"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE = 60 * 60 * 24 * 7
HONEYPOT_FIELD = "website"
MAX_BODY_BYTES = 64 * 1024


def content_security_policy(nonce: str) -> str:
    """Our own pages: scripts and styles only with this response's nonce."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'nonce-{nonce}'",
            f"style-src 'nonce-{nonce}'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


# A stored digest is our own rendered HTML: inline styles, remote images, no script.
DIGEST_VIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """ASGI middleware: a fresh CSP nonce per request (as `request.state.csp_nonce`)
    and the headers every response carries. A route that sets its own CSP keeps it."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in self._headers(nonce):
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette's own 500 answer is sent outside this middleware, bare: send
            # ours with the headers, then let the error be logged as usual.
            if not started:
                await _plain(send_with_headers, 500, "Something went wrong on our side.")
            raise

    def _headers(self, nonce: str) -> list[tuple[str, str]]:
        headers = [
            ("content-security-policy", content_security_policy(nonce)),
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            # Links carry tokens: never leak them to the sites papers link to.
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
            ("permissions-policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
            ("cache-control", "no-store"),
            ("x-robots-tag", "noindex, nofollow"),
        ]
        if self.hsts:
            headers.append(("strict-transport-security", "max-age=31536000"))
        return headers


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes with 413, whether the
    client announced the length or streamed it; nothing past the limit is read.

    Paths for which `explains(path)` is true (the file uploads) are handed to the app
    all the same, with a body whose first read raises `BodyTooLarge` (announced too
    long) or whose read past the limit does: the route answers with its own page
    saying the file is too big. For the rest, and when uncaught, `refuse(scope)`
    answers (a page for a form, JSON for the API), or a plain 413 without it."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MAX_BODY_BYTES,
        explains: Callable[[str], bool] | None = None,
        refuse: Callable[[Scope], Response] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.explains = explains
        self.refuse = refuse

    async def _refused(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.refuse is None:
            await _plain(send, 413, "request body too large")
        else:
            await self.refuse(scope)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced_too_big = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced_too_big = int(value) > self.limit
                except ValueError:
                    announced_too_big = True
        if announced_too_big and not (self.explains and self.explains(scope.get("path", ""))):
            await self._refused(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            if announced_too_big:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refused(scope, receive, send)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Csrf:
    """Signed double-submit tokens for every form but the one-click unsubscribe."""

    def __init__(self, secret: str, secure_cookie: bool, base_url: str = "") -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="digest.csrf")
        self._secure = secure_cookie
        self._origins = {origin_of(base_url)} - {""}

    def nonce(self, request: Request) -> str:
        """The visitor's nonce: the one in their cookie if well-formed, else a new one."""
        current = request.cookies.get(CSRF_COOKIE, "")
        if 20 <= len(current) <= 64 and all(c.isalnum() or c in "-_" for c in current):
            return current
        return secrets.token_urlsafe(32)

    def form_token(self, nonce: str) -> str:
        return self._signer.dumps(nonce)

    def set_cookie(self, response: Response, nonce: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            max_age=CSRF_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=self._secure,
            path="/",
        )

    def check(self, request: Request, form: Mapping[str, Any]) -> bool:
        if request.headers.get("sec-fetch-site") == "cross-site":
            return False
        if not self._same_origin(request):
            return False
        cookie = request.cookies.get(CSRF_COOKIE, "")
        field = form.get(CSRF_FIELD)
        if not cookie or not isinstance(field, str) or len(field) > 400:
            return False
        try:
            value = self._signer.loads(field, max_age=CSRF_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(value, str) and hmac.compare_digest(value.encode(), cookie.encode())

    def _same_origin(self, request: Request) -> bool:
        """A browser that sends Origin must name our site (DIGEST_BASE_URL, or the host
        the request came to): this also stops a sibling subdomain that planted its own
        CSRF cookie, which SameSite cannot stop. Browsers send "null" for our own forms
        (our referrer policy is no-referrer), so "null" tells nothing either way."""
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return True
        own = f"{request.url.scheme}://{request.url.netloc}".lower()
        return origin.lower() in self._origins | {own}


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased; "" when it has none."""
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        return ""
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()


def honeypot_filled(form: Mapping[str, Any]) -> bool:
    """People never see the field; software that fills every input fills it."""
    value = form.get(HONEYPOT_FIELD)
    return isinstance(value, str) and value.strip() != ""
