"""`digest web` and `digest serve`: the web app under uvicorn, optionally with the
scheduler beside it in the same process.

On SIGTERM or Ctrl-C uvicorn finishes the requests in flight, then the scheduler is
stopped, which lets in-flight sends finish and be recorded before the process exits.
"""

from __future__ import annotations

import errno
import logging
import socket

import uvicorn

from digest.config import Settings, check_secret
from digest.errors import DigestError, InputError
from digest.logs import configure_logging, log_event
from digest.pipeline.stopping import stop_on_signals
from digest.store import Engine
from digest.web.app import create_app
from digest.web.deadlines import with_deadlines
from digest.web.metrics import serve_metrics

log = logging.getLogger("digest.web")


class PortInUse(DigestError):
    """Another program (often another `digest web`) listens on the address: exit 3,
    apart from bad input (2) and failures worth retrying (1), so a supervisor or a
    script can tell it."""

    exit_code = 3


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket, bound here before anything starts (the scheduler
    included), so a busy port is one clear line and not uvicorn's log and exit 3."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} on {host} is in use; set DIGEST_HTTP_PORT or --port"
            ) from None
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "set DIGEST_HTTP_HOST / DIGEST_HTTP_PORT or --host / --port"
        ) from None
    sock.set_inheritable(True)
    return sock


def run_web(
    engine: Engine,
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    with_scheduler: bool = False,
) -> int:
    """Serve until a signal; returns the exit code (0 after a clean shutdown)."""
    configure_logging(settings.log_format, settings.log_level)
    if check_secret(settings, host or settings.http_host):
        log.warning("DIGEST_SECRET_KEY is the example value; fine on this machine only")
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
    listener = bind_listener(config.host, config.port)
    scheduler = None
    if with_scheduler:
        # Imported here for start-up cost only (APScheduler); the scheduler imports no web.
        from digest.scheduler import start_scheduler

        scheduler = start_scheduler(engine, settings)
    stop_metrics = serve_metrics(settings, engine)
    # uvicorn re-raises the signal that stopped it once it is done; a quiet handler
    # turns that into a normal return, so the scheduler below is stopped cleanly.
    with stop_on_signals():
        log_event(log, "web.starting", host=config.host, port=config.port)
        try:
            server.run(sockets=[listener])
        finally:
            listener.close()
            if stop_metrics is not None:
                stop_metrics()
            if scheduler is not None:
                from digest.scheduler import stop_scheduler

                stop_scheduler(scheduler)
    return 0 if server.started else 1
