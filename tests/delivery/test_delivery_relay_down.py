"""Issue 16, "silent waits": with the SMTP relay down, `digest run` says what it waits
for and until when, gives up quickly (exit 1, the digests kept for the next run),
collapses identical errors into one line with a count; `digest retry` against a relay
that is up again sends the waiting digests at once."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from conftest import free_port, run_cli
from sqlmodel import Session, select

from digest import store, subscriptions
from digest.config import load_settings
from digest.models import Digest

SUBSCRIBERS = 6  # more than the pool (4): some are tried and fail alike, some wait
DEADLINE = 60.0  # generous: the run should end well within 30 s


def _subscribe(env: dict[str, str], n: int) -> None:
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    store.init_db(engine)
    with Session(engine) as session:
        for i in range(n):
            session.add(
                subscriptions.new_subscriber(
                    settings, f"reader{i}@example.org", "language, model, learning", send_at="00:00"
                )
            )
        session.commit()
    engine.dispose()


def _digests(env: dict[str, str]) -> list[Digest]:
    engine = store.make_engine(env["DIGEST_DATABASE_URL"])
    with Session(engine) as session:
        rows = list(session.exec(select(Digest)))
    engine.dispose()
    return rows


def _run_against_closed_port(env: dict[str, str], cwd: Path) -> tuple[dict[str, str], str]:
    down = {**env, "DIGEST_SMTP_PORT": str(free_port())}  # nothing listens there
    _subscribe(down, SUBSCRIBERS)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "digest", "run"],
        env=down,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEADLINE,  # raises if the run is still waiting in silence
    )
    assert time.monotonic() - started < DEADLINE
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return down, proc.stdout + proc.stderr


def test_a_dead_relay_ends_the_run_quickly_says_why_and_keeps_the_digests(tmp_path, env):
    down, output = _run_against_closed_port(env, tmp_path)
    relay = f"127.0.0.1:{down['DIGEST_SMTP_PORT']}"
    # What it waited for and until when, then why it stopped.
    assert re.search(
        rf"SMTP relay {re.escape(relay)} unreachable \(connect: .+\); "
        r"next try at \d\d:\d\d:\d\d UTC \(attempt 2\)",
        output,
    ), output
    assert "giving up for this run" in output, output
    # Identical failures collapse into one line with a count.
    assert re.search(r"^\s*\d+ x connect: ", output, re.MULTILINE), output
    assert len(re.findall(r"connect: .*refused", output, re.IGNORECASE)) < SUBSCRIBERS, output
    rows = _digests(down)
    assert len(rows) == SUBSCRIBERS
    assert {d.status for d in rows} <= {"pending", "retrying"}  # kept, never failed
    assert all(d.sent_at is None for d in rows)


def test_retry_sends_the_waiting_digests_now_once_the_relay_is_up(tmp_path, env, smtp_sink):
    down, _ = _run_against_closed_port(env, tmp_path)
    assert any(d.status == "retrying" for d in _digests(down))
    # The relay is back. `retry` must not wait for the retry time: with no retry window
    # at all, only digests it made due now can go out.
    up = {**env, "DIGEST_RUN_RETRY_WINDOW_SECONDS": "0"}
    result = run_cli(["retry"], up, cwd=tmp_path, timeout=DEADLINE)
    assert result.code == 0, result.stdout + result.stderr
    assert f"sent: {SUBSCRIBERS}," in result.stdout, result.stdout
    assert sorted(smtp_sink.by_recipient()) == [
        f"reader{i}@example.org" for i in range(SUBSCRIBERS)
    ]
    assert {d.status for d in _digests(up)} == {"sent"}
