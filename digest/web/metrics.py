"""`GET /metrics`: Prometheus metrics, read from the database at scrape time by a
custom collector (see `store.metrics_snapshot` for why), behind the admin token as a
bearer token like the admin API (404 while DIGEST_ADMIN_TOKEN is empty, 401 without
the right token). With DIGEST_METRICS_LISTEN set, they are served on that address
instead, with the same token, so the public site need not expose them at all.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, make_wsgi_app
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from digest import store
from digest.config import Settings
from digest.errors import InputError
from digest.models import utcnow
from digest.states import DigestStatus, FetchStatus, InboundKind, SubscriberStatus
from digest.store import Engine
from digest.web.admin import require_admin

log = logging.getLogger("digest.web")

# Upper bounds (seconds) of the send-latency histogram: from an edition queued
# (created_at) to the relay's acceptance (sent_at): a minute for a healthy run,
# hours when a relay throttles or was down.
LATENCY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
LATENCY_DAYS = 2  # editions this recent count toward the histogram


class DatabaseCollector(Collector):
    """Collects every digest metric from the database on each scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        since = (now - timedelta(days=LATENCY_DAYS)).date().isoformat()
        snap = store.metrics_snapshot(self.engine, now, LATENCY_BUCKETS, since)
        yield _by_status(
            "digest_subscribers", "Subscribers by status.", SubscriberStatus, snap.subscribers
        )
        yield GaugeMetricFamily(
            "digest_subscriber_bounces",
            "Bounces counted against subscribers now (cleared when one is reactivated).",
            value=snap.subscriber_bounces,
        )
        yield GaugeMetricFamily(
            "digest_subscriber_complaints",
            "Complaints (ARF reports) counted against stored subscribers.",
            value=snap.subscriber_complaints,
        )
        inbound = CounterMetricFamily(
            "digest_inbound_messages",
            "Messages `digest inbound` read, by what it made of them (bounce, complaint, ...).",
            labels=["kind"],
        )
        for kind in sorted(set(InboundKind) | set(snap.inbound)):
            inbound.add_metric([kind], snap.inbound.get(kind, 0))
        yield inbound
        yield _by_status(
            "digest_digests", "Outbox rows (one digest each) by status.", DigestStatus, snap.digests
        )
        yield CounterMetricFamily(
            "digest_digests_sent",
            "Digests the relay accepted (deleted subscribers' included).",
            value=snap.digests_sent,
        )
        yield GaugeMetricFamily(
            "digest_outbox_due", "Digests due to be sent now (queue depth).", value=snap.due
        )
        yield GaugeMetricFamily("digest_papers", "Papers stored.", value=snap.papers)
        lat = snap.latency
        yield HistogramMetricFamily(
            "digest_send_latency_seconds",
            f"From a digest queued to the relay accepting it, editions of the last "
            f"{LATENCY_DAYS} days.",
            buckets=[(str(float(b)), n) for b, n in zip(lat.bounds, lat.counts, strict=True)]
            + [("+Inf", lat.count)],
            sum_value=lat.total,
        )
        yield from _sources(snap.sources, now)


def _by_status(name: str, doc: str, states: Iterable[str], counts: dict[str, int]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=["status"])
    for status in sorted(set(states) | set(counts)):
        family.add_metric([status], counts.get(status, 0))
    return family


def _sources(rows: list[dict[str, Any]], now: Any) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "digest_source_up", "1 when the source's last fetch succeeded, else 0.", labels=["source"]
    )
    stamp = GaugeMetricFamily(
        "digest_source_last_fetch_timestamp_seconds",
        "When the source was last fetched (Unix time).",
        labels=["source"],
    )
    age = GaugeMetricFamily(
        "digest_source_last_fetch_age_seconds",
        "Seconds since the source was last fetched.",
        labels=["source"],
    )
    new = GaugeMetricFamily(
        "digest_source_last_fetch_new_papers",
        "New papers the source's last fetch brought.",
        labels=["source"],
    )
    for row in rows:
        name = [str(row["name"])]
        up.add_metric(name, 1 if row["last_status"] == FetchStatus.OK else 0)
        when = row["last_fetch_at"]
        if when is not None:
            stamp.add_metric(name, when.timestamp())
            age.add_metric(name, max(0.0, (now - when).total_seconds()))
        counts = row["last_counts"] or {}
        if isinstance(counts.get("new"), int):
            new.add_metric(name, counts["new"])
    yield from (up, stamp, age, new)


def make_registry(engine: Engine) -> CollectorRegistry:
    """A registry of our own (not the client's global one): one per app."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(engine))
    return registry


router = APIRouter(include_in_schema=False, dependencies=[Depends(require_admin)])


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# ------------------------------------------------------- a separate listener


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Scrapes every few seconds would flood the log."""


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _with_token(inner: WsgiApp, token: str) -> WsgiApp:
    """The admin token as a bearer token, compared in constant time; GET and HEAD
    as on the main app (HEAD: the GET's status and headers, no body), 405 with
    `Allow` for any other method."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _answer(
                start_response,
                "405 Method Not Allowed",
                b"only GET and HEAD here\n",
                [("Allow", "GET, HEAD")],
            )
        given = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = given.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.encode()
        )
        if not ok:
            body = b"a valid bearer token is required\n"
            found = _answer(
                start_response, "401 Unauthorized", body, [("WWW-Authenticate", "Bearer")]
            )
        elif environ.get("PATH_INFO") != "/metrics":
            found = _answer(start_response, "404 Not Found", b"only /metrics here\n")
        else:
            found = _counted(inner, {**environ, "REQUEST_METHOD": "GET"}, start_response)
        if method == "HEAD":  # the body is counted in Content-Length, never sent
            return [b""]
        return found

    return app


def _counted(
    inner: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]
) -> list[bytes]:
    """`inner`'s answer with its Content-Length, which a HEAD keeps without the body."""
    started: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(inner(environ, lambda status, headers, *_: started.append((status, headers))))
    status, headers = started[0]
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*kept, ("Content-Length", str(len(body)))])
    return [body]


def _answer(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *(headers or []),
        ],
    )
    return [body]


def serve_metrics(settings: Settings, engine: Engine) -> Callable[[], None] | None:
    """Start the metrics listener (DIGEST_METRICS_LISTEN) in a daemon thread; its
    stop function, or None when the setting is empty."""
    if not settings.metrics_listen:
        return None
    if not settings.admin_token:  # else nothing would answer, and nobody would know
        log.warning(
            "DIGEST_METRICS_LISTEN=%s is set but DIGEST_ADMIN_TOKEN is empty: no metrics "
            "are served (set the token the scraper sends)",
            settings.metrics_listen,
        )
        return None
    host, _, port = settings.metrics_listen.rpartition(":")
    app = _with_token(make_wsgi_app(make_registry(engine)), settings.admin_token)
    try:
        server = make_server(
            host.strip("[]") or "127.0.0.1",
            int(port),
            app,
            server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )
    except OSError as exc:  # a busy port or an address not on this machine: one line
        raise InputError(
            f"DIGEST_METRICS_LISTEN={settings.metrics_listen}: cannot listen there: "
            f"{exc.strerror or exc}"
        ) from None
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    log.info("metrics on http://%s/metrics", settings.metrics_listen)

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop
