"""The web app served by uvicorn on a loopback port, and a visitor talking to it with
httpx (real HTTP, cookies kept): shared by the sign-up tests of issue 16."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import httpx
import uvicorn
from conftest import free_port, settings_with, wait_for
from sqlalchemy.engine import Engine

from digest.config import Settings
from digest.web import create_app


@contextmanager
def served(settings: Settings, engine: Engine, **changes: object) -> Iterator[str]:
    """The app under uvicorn in a thread; yields its base URL (links in mail use it)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(settings_with(settings, base_url=url, **changes), engine)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=15)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


def csrf_token(client: httpx.Client, path: str = "/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_up(client: httpx.Client, email: str, keywords: str = "diffusion", **fields: str):
    data = {
        "csrf_token": csrf_token(client),
        "email": email,
        "keywords": keywords,
        "timezone": "Europe/Berlin",
        "send_at": "07:30",
        "frequency": "daily",
        "max_papers": "10",
        **fields,
    }
    return client.post("/subscribe", data=data)


def post_form(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    """POST a page's form: the CSRF token comes from the page at `path` itself when it
    has a form, else from the sign-up page."""
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    token = found.group(1) if found else csrf_token(client)
    return client.post(path, data={"csrf_token": token, **fields})


def link_in(msg: EmailMessage, base: str, kind: str) -> str:
    """The path of the `kind` link (confirm, manage, unsubscribe) in a mail."""
    body = msg.get_body(preferencelist=("plain",)).get_content()
    found = re.search(rf"{re.escape(base)}(/{kind}/[A-Za-z0-9_.\-]+)", body)
    assert found, f"no {kind} link in: {body[:500]}"
    return found.group(1)


def mails_to(sink, address: str, count: int) -> list[EmailMessage]:
    """The mails to `address`, once there are `count` of them (sent after answering)."""
    return wait_for(lambda: (m := sink.by_recipient().get(address, [])) and len(m) >= count and m)


@contextmanager
def digest_web(
    env: dict[str, str], cwd: Path, log_to: Path | None = None, **settings: str
) -> Iterator[int]:
    """The real `digest web` in a subprocess on a free loopback port, with extra
    `DIGEST_*` settings (its stderr in the file `log_to`, if given); yields the port
    once /healthz answers, stops it after."""
    port = free_port()
    log = open(log_to, "wb") if log_to is not None else None  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "web", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, **settings},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=30, interval=0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not None:
            log.close()
