"""Shared test fixtures: real components only (an aiosmtpd server on loopback, a real
SQLite file, the real `digest` command in a subprocess)."""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from replay_server import ReplayServer
from sqlmodel import Session

from digest import store, subscriptions
from digest.config import Settings, load_settings
from digest.smtp_sink import SmtpSink

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The suite's DIGEST_SECRET_KEY: long enough to be accepted (32 characters at least).
TEST_SECRET = "test-secret-for-the-test-suite-only"
SEED_CORPUS = REPO.parent / "shared" / "corpus" / "seed_papers.jsonl"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need_service(available: bool, what: str) -> None:
    """Skip locally when a system service is missing; under CI=true, fail instead."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{what} is required under CI but is not available")
    pytest.skip(f"{what} is not available")


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02):
    """Poll until `predicate()` is truthy or the deadline passes (no bare sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class Sink:
    """A running SMTP server that stores messages under a folder."""

    def __init__(self, sink: SmtpSink, folder: Path) -> None:
        self._sink = sink
        self.folder = folder
        self.port = sink.port

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(self.folder.glob("*.eml"))
        ]

    def by_recipient(self) -> dict[str, list[EmailMessage]]:
        out: dict[str, list[EmailMessage]] = {}
        for msg in self.messages():
            out.setdefault(str(msg["To"]), []).append(msg)
        return out


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[Sink]:
    folder = tmp_path / "received"
    with SmtpSink(folder) as sink:
        yield Sink(sink, folder)


@pytest.fixture
def env(tmp_path: Path, smtp_sink: Sink) -> dict[str, str]:
    """Environment for running `digest` against a fresh SQLite file and the sink; the
    file is made as a user would first, by `digest init` (no other command makes one)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    base.update(
        {
            "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(smtp_sink.port),
            "DIGEST_FROM": "Paper Digest <digest@example.org>",
            "DIGEST_BASE_URL": "https://digest.example.org",
            "DIGEST_SECRET_KEY": TEST_SECRET,
            "DIGEST_SOURCES": "sample",
        }
    )
    digest_init(base)
    return base


def digest_init(env: dict[str, str]) -> None:
    """What a user does first: `digest init` (only `init` creates a database). Run
    in-process, through the same `store.init_db` the command calls, since hundreds of
    tests start this way."""
    eng = store.make_engine(env["DIGEST_DATABASE_URL"])
    store.init_db(eng)
    eng.dispose()


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(environ=env, env_file=None)


@pytest.fixture
def engine(settings: Settings):
    eng = store.make_engine(settings.database_url)
    store.init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def source_engine(tmp_path: Path) -> Iterator[store.Engine]:
    """A store of its own for the source tests that merge what sources fetched: a
    fresh SQLite file, with no environment and no SMTP sink (which `engine` brings)."""
    eng = store.make_engine(f"sqlite:///{tmp_path / 'sources.db'}")
    store.init_db(eng)
    yield eng
    eng.dispose()


SOURCE_TESTS = REPO / "tests" / "sources"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The source tests fail on a DeprecationWarning: a library saying that what we
    call goes away (feedparser's `updated_parsed` fallback did) is fixed while the
    old behaviour still runs, not after an upgrade removed it."""
    for item in items:
        if item.path.is_relative_to(SOURCE_TESTS):
            item.add_marker(pytest.mark.filterwarnings("error::DeprecationWarning"))


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A replay HTTP server on loopback, for the source tests."""
    with ReplayServer() as server:
        yield server


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    # This machine has no network: keep Chromium from trying to reach Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser():
    """The Debian Chromium through Playwright (no browser download). One per test:
    Playwright's sync API keeps an event loop running in this thread while it lives,
    which would break the `asyncio.run` of any later test that sends mail."""
    need_service(CHROMIUM.exists(), "chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the whole session (skips locally if not installed)."""
    from tests.postgres_server import PostgresServer, find_bin

    bindir = find_bin()
    need_service(bindir is not None, "PostgreSQL (Debian package postgresql)")
    server = PostgresServer(bindir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9]", "_", request.node.name.lower())[:50]
    return postgres_server.create_database(name)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> CliResult:
    """Run the real `digest` command in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "digest", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def clean_exit(res: CliResult, code: int) -> None:
    """The command ended with `code` and without a traceback."""
    assert res.code == code, (res.code, res.stdout[-2000:], res.stderr[-2000:])
    assert "Traceback" not in res.stderr


def strict_json(text: str) -> Any:
    """Parse as standard JSON: `NaN` / `Infinity` are not JSON and must never appear."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path) -> Callable[..., CliResult]:
    """Runs `digest` against the `env` database (made by `digest init`)."""

    def _run(*args: str, extra_env: dict[str, str] | None = None) -> CliResult:
        return run_cli(list(args), {**env, **(extra_env or {})}, cwd=tmp_path)

    return _run


def subscribe_many(env: dict[str, str], addresses: list[str], keywords: str) -> None:
    """Many active subscribers at once, written in one transaction: the crash tests
    need hundreds, and one `digest subscribe` process each would take minutes."""
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    store.init_db(engine)
    with Session(engine) as session:
        for address in addresses:
            session.add(subscriptions.new_subscriber(settings, address, keywords, send_at="00:00"))
        session.commit()
    engine.dispose()


def relay_env(env: dict[str, str], port: int, **settings: object) -> dict[str, str]:
    """`env` sending to the relay on `port`, with more settings by name in lower case
    (`edition_chunk=10` sets DIGEST_EDITION_CHUNK): what the crash and shutdown tests
    run `digest` processes with."""
    named = {f"DIGEST_{name.upper()}": str(value) for name, value in settings.items()}
    return {**env, "DIGEST_SMTP_PORT": str(port), **named}


def settings_with(settings: Settings, **changes: object) -> Settings:
    return replace(settings, **changes)


def dkim_key(folder: Path, bits: int = 2048) -> tuple[Path, bytes]:
    """A fresh RSA key written as PEM (what DIGEST_DKIM_KEY_FILE names) and the DNS
    TXT record that publishes it (what a verifier's lookup answers)."""
    import base64

    key = folder / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(key), str(bits)], check=True, capture_output=True
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
