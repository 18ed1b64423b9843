"""A real HTTP server on loopback that replays recorded responses, for the source tests
(the `replay` fixture in conftest.py starts one per test).

Routes are matched on the path and, optionally, a subset of the query string; each
route plays its replies in order and then repeats the last one. Every request is
recorded with the server's monotonic clock, its query, headers and the client port
(which shows how many connections a client opened).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def xml(name: str, **headers: str) -> Reply:
    return Reply(200, fixture_bytes(name), {"Content-Type": "application/rss+xml", **headers})


def json_reply(name: str) -> Reply:
    return Reply(200, fixture_bytes(name), {"Content-Type": "application/json"})


@dataclass
class Seen:
    at: float
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    port: int


@dataclass
class _Route:
    path: str
    match: dict[str, str]
    replies: list[Reply]


class LoopbackServer:
    """An HTTP server on a free loopback port, in a thread, for one `with` block:
    subclasses give the request handler and call `_serve` from their `__init__`."""

    stopping: threading.Event
    url: str

    def _serve(self, handler: type[BaseHTTPRequestHandler], path: str = "") -> None:
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class ReplayServer(LoopbackServer):
    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                reply = server._take(parts.path, query, self)
                if reply.delay and server.stopping.wait(reply.delay):
                    return
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self._serve(Handler)

    def route(self, path: str, *replies: Reply, **match: str) -> None:
        """Serve `replies` in order at `path` (when the query holds `match`); routes added
        later win, so a test can override a default."""
        with self._lock:
            self._routes.insert(0, _Route(path, match, list(replies)))

    def _take(self, path: str, query: dict[str, str], handler: BaseHTTPRequestHandler) -> Reply:
        with self._lock:
            headers = {k.lower(): v for k, v in handler.headers.items()}
            self.requests.append(
                Seen(time.monotonic(), path, query, headers, handler.client_address[1])
            )
            for route in self._routes:
                if route.path == path and all(query.get(k) == v for k, v in route.match.items()):
                    return route.replies.pop(0) if len(route.replies) > 1 else route.replies[0]
        return Reply(404, b"not found")

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]
