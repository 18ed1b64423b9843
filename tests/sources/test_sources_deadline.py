"""Issue 16 item 3: one slow source must not block every digest.

A real HTTP server on loopback answers a feed request with headers at once and then
one byte every 0.5 s for minutes: httpx's per-read timeout never fires on it. Each
fetch has a total deadline (DIGEST_FETCH_DEADLINE_SECONDS), `digest run` still sends
what is due, and `digest serve` stops promptly on SIGTERM with such a fetch in flight.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import REPO, Sink, free_port, run_cli, wait_for
from replay_server import LoopbackServer

from digest import pipeline

FEED_HEAD = b'<?xml version="1.0"?><rss version="2.0"><channel><title>slow</title>'
# No test waits anywhere near this: a fetch that is not stopped fails the test by its
# own generous bound first.
TRICKLE_FOR = 300.0


class TrickleServer(LoopbackServer):
    """Sends an RSS feed's head, then a space every `every` seconds until the client
    leaves or the server stops. `open_requests` counts requests being trickled now."""

    def __init__(self, every: float = 0.5) -> None:
        self.open_requests = 0
        self.served = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with server._lock:
                    server.open_requests += 1
                    server.served += 1
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml")
                    self.send_header("Content-Length", str(len(FEED_HEAD) + 1_000_000))
                    self.end_headers()
                    self.wfile.write(FEED_HEAD)
                    self.wfile.flush()
                    for _ in range(int(TRICKLE_FOR / every)):
                        if server.stopping.wait(every):
                            return
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:
                    pass  # the client hung up: what a deadline does
                finally:
                    with server._lock:
                        server.open_requests -= 1
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self._serve(Handler, "/feed.xml")


@pytest.fixture
def trickle() -> Iterator[TrickleServer]:
    with TrickleServer() as server:
        yield server


def _slow_env(env: dict[str, str], trickle: TrickleServer, deadline: str) -> dict[str, str]:
    return {
        **env,
        "DIGEST_SOURCES": f"sample,feed:{trickle.url}",
        "DIGEST_FETCH_DEADLINE_SECONDS": deadline,
        "DIGEST_HTTP_RETRIES": "0",
    }


def test_fetch_gives_up_on_a_trickling_feed_at_its_deadline_and_keeps_the_good_source(
    env: dict[str, str], tmp_path: Path, trickle: TrickleServer
):
    slow = _slow_env(env, trickle, "3")
    assert run_cli(["init"], slow, cwd=tmp_path).code == 0
    # Before the fix this never ended on its own (the subprocess timeout fails it).
    result = run_cli(["fetch", "--json"], slow, cwd=tmp_path, timeout=30)
    assert result.code == 1, result.stderr
    reports = {r["source"]: r for r in json.loads(result.stdout)}
    feed = reports[f"feed:{trickle.url}"]
    assert feed["failed"] is True
    assert any("deadline" in e and "3 s" in e for e in feed["errors"]), feed["errors"]
    assert reports["sample"]["failed"] is False
    assert reports["sample"]["new"] > 0
    papers = run_cli(["papers", "--json"], slow, cwd=tmp_path)
    assert len(json.loads(papers.stdout)) == reports["sample"]["new"]
    assert trickle.served == 1  # a deadline is not retried


def test_run_sends_due_digests_despite_a_trickling_source(
    env: dict[str, str], tmp_path: Path, trickle: TrickleServer, smtp_sink: Sink
):
    slow = _slow_env(env, trickle, "3")
    assert run_cli(["init"], slow, cwd=tmp_path).code == 0
    sub = run_cli(["subscribe", "ada@example.org", "-k", "*"], slow, cwd=tmp_path)
    assert sub.code == 0, sub.stderr
    result = run_cli(["run", "--now"], slow, cwd=tmp_path, timeout=30)
    assert result.code == 1, result.stderr  # a source failed; the digest went out
    assert "deadline" in result.stderr
    assert [str(m["To"]) for m in smtp_sink.messages()] == ["ada@example.org"]


def test_serve_stops_promptly_on_sigterm_with_a_trickling_fetch_in_flight(
    env: dict[str, str], tmp_path: Path, trickle: TrickleServer
):
    # A deadline far away: only SIGTERM can end this fetch in time.
    slow = {**_slow_env(env, trickle, "3600"), "PYTHONPATH": str(REPO)}
    assert run_cli(["init"], slow, cwd=tmp_path).code == 0
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--port", str(port)],
        env=slow,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: trickle.open_requests == 1, timeout=30)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("digest serve did not stop within 30 s of SIGTERM")
        assert code == 0, proc.stderr.read() if proc.stderr else ""
        wait_for(lambda: trickle.open_requests == 0, timeout=10)  # it hung up
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_silent_server_is_cut_at_the_deadline_not_at_the_read_timeout(settings, engine):
    """The read timeout (20 s here) is capped by what is left of the deadline."""
    with TrickleServer(every=TRICKLE_FOR) as silent:
        slow = replace(
            settings,
            sources=f"feed:{silent.url}",
            http_timeout=20.0,
            http_retries=3,
            fetch_deadline_seconds=2.0,
        )
        [report] = pipeline.fetch_all(engine, slow)
    assert report.failed
    assert report.errors == [
        f"gave up on {silent.url}: the fetch deadline of 2 s passed (DIGEST_FETCH_DEADLINE_SECONDS)"
    ]
    assert silent.served == 1
