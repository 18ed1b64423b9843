"""The web app: `create_app(settings, engine)` builds it; nothing is global, so tests
and `digest web` / `digest serve` each get their own.

The pages, the JSON API and the admin API are routers over one `WebContext` kept in
`app.state.web`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from digest import store
from digest.config import Settings, canonical_timezones
from digest.delivery import Transport
from digest.store import DatabaseError, Engine
from digest.web import admin, api, feedback, library, metrics, pages, ratings, uploads
from digest.web.accounts import Accounts
from digest.web.context import WebContext
from digest.web.head import HeadAsGet
from digest.web.limits import DbRateLimiter, RateLimiter, SignupLimits
from digest.web.mails import Mailer
from digest.web.preview import PreviewGate
from digest.web.security import MAX_BODY_BYTES, BodyLimit, Csrf, SecurityHeaders
from digest.web.templating import make_web_environment
from digest.web.topics import load_catalogue

log = logging.getLogger("digest.web")


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    limiter: RateLimiter | None = None,
    transport_factory: Callable[[], Transport] | None = None,
) -> FastAPI:
    """The ASGI app. `limiter` and `transport_factory` replace the database rate
    limiter and the configured mail transport (for another store or another relay)."""
    env = make_web_environment(settings)
    catalogue = load_catalogue()
    limits = SignupLimits(settings, limiter or DbRateLimiter(engine))
    context = WebContext(
        settings=settings,
        engine=engine,
        env=env,
        accounts=Accounts(settings, engine, limits, catalogue),
        mailer=Mailer(settings, env, transport_factory),
        csrf=Csrf(
            settings.secret_key,
            secure_cookie=settings.base_url.startswith("https://"),
            base_url=settings.base_url,
        ),
        catalogue=catalogue,
        timezones=list(canonical_timezones()),
    )
    gate = PreviewGate(settings, engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        gate.close()

    app = FastAPI(
        lifespan=lifespan,
        title="digest",
        version="1.0",
        summary="Sign up for a personal digest of new papers; manage it with signed links.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = context
    app.state.preview = gate
    app.add_middleware(BodyLimit, explains=uploads.is_upload, refuse=too_big_answer)
    app.add_middleware(SecurityHeaders, hsts=settings.base_url.startswith("https://"))
    app.add_middleware(HeadAsGet)
    app.include_router(library.router)  # before pages: /manage/{token}/{action}
    app.include_router(ratings.pages)
    app.include_router(pages.router)
    app.include_router(feedback.router)
    app.include_router(api.router)
    app.include_router(ratings.api)
    # the admin API answers 404 while DIGEST_ADMIN_TOKEN is empty; it is not advertised then
    app.include_router(admin.router, include_in_schema=bool(settings.admin_token))
    app.state.metrics = metrics.make_registry(engine)
    if not settings.metrics_listen:  # else on their own listener (digest.web.server)
        app.include_router(metrics.router)

    @app.get("/healthz", include_in_schema=True, tags=["operations"])
    async def healthz() -> JSONResponse:
        """200 while the database answers and takes writes (one rolled back); 503
        `degraded` with a reason when not: a sign-up would fail."""
        for check, reason in (
            (store.ping, "the database does not answer"),
            (store.probe_write, "the database refuses writes"),
        ):
            try:
                await run_in_threadpool(check, engine)
            except DatabaseError as exc:
                log.error("health check: %s: %s", reason, exc)
                return JSONResponse({"status": "degraded", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or exc.status_code not in (404, 405):
            return JSONResponse(
                {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
            )
        page = pages.message_page(
            request,
            "Page not found" if exc.status_code == 404 else "Not allowed here",
            "There is nothing at this address. Start again from the sign-up page.",
            exc.status_code,
        )
        page.headers.update(exc.headers or {})  # a 405 names the methods allowed (Allow)
        return page

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """FastAPI's default answer echoes the input, which fails to encode (a 500) when
        it holds an unpaired surrogate; where and why is all a client needs."""
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        unknown = [str(d["loc"][-1]) for d in detail if d["type"] == "extra_forbidden"]
        message = (
            f"unknown field(s): {', '.join(repr(n[:64]) for n in unknown[:10])}"
            if unknown
            else "the request is not valid"
        )
        return JSONResponse({"error": message, "detail": detail}, status_code=422)

    @app.exception_handler(DatabaseError)
    async def database_down(request: Request, exc: DatabaseError) -> Response:
        """The database went away: a friendly 503 (with our headers), never a bare 500."""
        log.error("database error on %s: %s", request.url.path, exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"error": "the service is unavailable for a moment; please try again"},
                status_code=503,
            )
        return pages.message_page(
            request,
            "Back in a moment",
            "We could not reach our database just now, so nothing was changed. "
            "Please try again in a few minutes.",
            503,
        )

    return app


def too_big_answer(scope: Scope) -> Response:
    """The 413 for a body over the cap (`BodyLimit`): JSON for the API, as its other
    errors; for anything else the page a browser shows, saying what happened."""
    request = Request(scope)
    if request.url.path.startswith("/api/"):
        limit = f"{MAX_BODY_BYTES // 1024} KiB"
        return JSONResponse({"error": f"the request body is over {limit}"}, status_code=413)
    return pages.message_page(
        request,
        "This form is too big",
        f"What was sent is over {MAX_BODY_BYTES // 1024} KiB, more than any of our forms "
        "needs, so we did not read it and nothing was changed. Go back, shorten what you "
        "typed and send it again.",
        413,
        ("/", "Go to the sign-up page"),
    )
