"""`digest preview --serve` answers only requests addressed to loopback by name.

A subscriber's preview carries their real manage and unsubscribe links (signed
tokens). A web page the operator visits can point a host name of its own at
127.0.0.1 (DNS rebinding) and then read `http://evil.example:8025/` as same-origin:
the server answered whatever Host the request named."""

from __future__ import annotations

import http.client
import threading

import pytest

from digest.preview import PreviewServer

SECRET = b"<html><body>manage: /manage/TOKEN</body></html>"


@pytest.fixture
def server():
    srv = PreviewServer(lambda fmt: SECRET, lambda: 0, 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    thread.join(10)


def get(port: int, host: str | None, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "evil.example", "127.0.0.1.evil.example:{port}", None]
)
@pytest.mark.parametrize("path", ["/", "/text", "/eml", "/__stamp"])
def test_a_request_for_another_host_name_gets_nothing(server, host, path):
    status, body = get(server.port, host and host.format(port=server.port), path)
    assert status == 421
    assert b"TOKEN" not in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_loopback_names_are_served(server, host):
    status, body = get(server.port, host.format(port=server.port))
    assert status == 200 and b"/manage/TOKEN" in body
