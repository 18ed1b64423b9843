"""Issue 16, item 10: slowloris. `digest web` closes connections whose request line
and headers, or whose body, do not arrive within DIGEST_HTTP_HEADER_TIMEOUT /
DIGEST_HTTP_BODY_TIMEOUT, however slowly the client keeps trickling bytes."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from web_served import digest_web

TIMEOUT = 1  # seconds, both deadlines
GIVE_UP = 20  # seconds: how long the test trickles before calling the connection held


@pytest.fixture
def port(env, tmp_path) -> Iterator[int]:
    with digest_web(
        env,
        tmp_path,
        DIGEST_HTTP_HEADER_TIMEOUT=str(TIMEOUT),
        DIGEST_HTTP_BODY_TIMEOUT=str(TIMEOUT),
    ) as port:
        yield port


def held_until_closed(sock: socket.socket, trickle: bytes) -> bytes:
    """Send `trickle` one byte per poll (nothing when empty) until the server closes
    the connection; everything it answered. Fails if it is still open at GIVE_UP."""
    answer = b""
    deadline = time.monotonic() + GIVE_UP
    sock.settimeout(0.2)  # each poll waits this long for the server to answer or close
    at = 0
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            chunk = None
        except ConnectionResetError:
            return answer
        if chunk == b"":
            return answer  # closed by the server
        if chunk:
            answer += chunk
            continue
        try:
            if trickle:
                sock.sendall(trickle[at % len(trickle) : at % len(trickle) + 1])
                at += 1
        except (BrokenPipeError, ConnectionResetError):
            return answer
    raise AssertionError(f"the connection was still open after {GIVE_UP} s")


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_a_connection_that_sends_nothing_is_closed(port):
    with connect(port) as sock:
        assert held_until_closed(sock, b"") == b""


def test_headers_sent_one_byte_at_a_time_are_cut_off_with_408(port):
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = held_until_closed(sock, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_body_sent_one_byte_at_a_time_is_cut_off(port):
    with connect(port) as sock:
        sock.sendall(
            b"POST /api/preview HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"
        )
        answer = held_until_closed(sock, b'"keywords": "diffusion",' * 100)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_normal_and_keep_alive_requests_still_work(port):
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/healthz").status_code == 200  # the same connection, reused
        answer = client.post("/api/preview", json={"keywords": "diffusion"})
        assert answer.status_code == 200
