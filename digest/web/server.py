"""`digest web` and `digest serve`: the web app under uvicorn, optionally with the
scheduler beside it in the same process.

On SIGTERM or Ctrl-C uvicorn finishes the requests in flight, then the scheduler is
stopped, which lets in-flight sends finish and be recorded before the process exits.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from digest.config import Settings
from digest.errors import InputError
from digest.logs import configure_logging, log_event
from digest.store import Engine
from digest.web.app import create_app
from digest.web.deadlines import with_deadlines

log = logging.getLogger("digest.web")


def run_web(
    engine: Engine,
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    with_scheduler: bool = False,
) -> int:
    """Serve until a signal; returns the exit code (0 after a clean shutdown)."""
    configure_logging(settings.log_format, settings.log_level)
    check_secret(settings)
    config = uvicorn.Config(
        create_app(settings, engine),
        host=host or settings.http_host,
        port=port or settings.http_port,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
        server_header=False,
        # slow clients: deadlines for a request's headers and body (uvicorn has none)
        http=with_deadlines(settings.http_header_timeout, settings.http_body_timeout),
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
    )
    server = uvicorn.Server(config)
    scheduler = None
    if with_scheduler:
        # Imported here for start-up cost only (APScheduler); the scheduler imports no web.
        from digest.scheduler import start_scheduler

        scheduler = start_scheduler(engine, settings)
    # uvicorn re-raises the signal that stopped it once it is done; a quiet handler
    # turns that into a normal return, so the scheduler below is stopped cleanly.
    previous = {s: signal.signal(s, _noted) for s in (signal.SIGTERM, signal.SIGINT)}
    log_event(log, "web.starting", host=config.host, port=config.port)
    try:
        server.run()
    finally:
        if scheduler is not None:
            from digest.scheduler import stop_scheduler

            stop_scheduler(scheduler)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if server.started else 1


def check_secret(settings: Settings) -> None:
    """Links are the only credentials: with the published example key anyone could
    sign a manage link for any address. Allowed only while links point at this
    machine (local trials), refused once DIGEST_BASE_URL is a public site."""
    example = next(f.default for f in dataclasses.fields(Settings) if f.name == "secret_key")
    if settings.secret_key != example:
        return
    host = (urlsplit(settings.base_url).hostname or "").lower()
    if host in {"localhost", "127.0.0.1", "::1"}:
        log.warning("DIGEST_SECRET_KEY is the example value; fine on this machine only")
        return
    raise InputError(
        f"DIGEST_SECRET_KEY is the example value {example!r}, so anyone could forge "
        "manage and unsubscribe links for " + settings.base_url + ". Set a long random "
        'value, e.g. the output of: python -c "import secrets; print(secrets.token_urlsafe(32))"'
    )


def _noted(signum: int, _frame: Any) -> None:
    log_event(log, "signal", signal=signal.Signals(signum).name)
