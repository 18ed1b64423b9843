"""SIGTERM to `digest worker` while it sends through a slow relay: the sends in
flight finish and are recorded, nothing more is started, nothing is sent twice, and
the rest waits in the outbox; a real aiosmtpd server, a real SQLite file."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from conftest import relay_env, subscribe_many, wait_for
from fault_smtp import FaultyHandler, FaultyServer
from sqlalchemy import select
from test_delivery import queue, rows

from digest import pipeline, store
from digest.config import load_settings
from digest.delivery.smtp import SmtpTransport
from digest.models import Digest
from digest.pipeline.sending import BuildFeed, SendingThread

N = 30


def _signal_while_sending(
    tmp_path: Path,
    env,
    args: list[str],
    signum: int,
    extra: dict[str, str] | None = None,
    times: int = 1,
):
    """Run `digest ARGS` against a relay taking 0.3 s a message, one connection, N
    subscribers due; send `signum` once two messages are in (`times`: again, once
    the process said it took the first). Returns the process's exit code and stderr
    (checked to hold no traceback), what the relay accepted (recipient -> count), how
    many it had when the signal went, and the outbox rows."""
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    assert not any(r.failed for r in pipeline.fetch_all(engine, settings))
    subscribe_many(env, [f"reader{i:02d}@example.org" for i in range(N)], "model OR learning")
    handler = FaultyHandler(delay=0.3)
    with FaultyServer(handler) as server:
        err_path = tmp_path / "stderr.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", *args],
            env={**relay_env(env, server.port, smtp_pool_size=1), **(extra or {})},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=err_path.open("w"),
            text=True,
        )
        try:
            wait_for(lambda: len(handler.accepted) >= 2 or proc.poll() is not None, timeout=60)
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signum)
            at_signal = len(handler.accepted)
            name = signal.Signals(signum).name
            for _ in range(times - 1):
                # signals of one kind sent together are delivered as one: send the
                # next once the first was taken (the process said so)
                wait_for(lambda: name in err_path.read_text() or proc.poll() is not None)
                proc.send_signal(signum)
            proc.communicate(timeout=60)
            err = err_path.read_text()
            assert "Traceback" not in err, err[-2000:]  # whatever the stop, never one
        finally:
            if proc.poll() is None:
                proc.kill()
    with engine.connect() as conn:
        found = conn.execute(select(Digest.recipient, Digest.status, Digest.lease_until)).all()
    engine.dispose()
    accepted = Counter(a.recipient for a in handler.accepted)
    return proc.returncode, err, accepted, at_signal, found


def _only_the_sends_in_flight_finished(accepted: Counter[str], at_signal: int, found) -> None:
    assert set(accepted.values()) == {1}  # nothing twice
    # the send in flight (one connection), and one more at most for the signal's race
    assert len(accepted) <= at_signal + 2 < N
    sent = {r.recipient for r in found if r.status == "sent"}
    assert sent == set(accepted)  # every accepted send recorded
    assert all(r.status in ("sent", "pending") for r in found), Counter(r.status for r in found)
    assert all(r.lease_until is None for r in found if r.status == "pending")


def test_sigterm_during_sends_stops_after_the_sends_in_flight(tmp_path: Path, env):
    """Before, the worker sent every row it had claimed (a batch of up to 200) before
    exiting: through a relay taking seconds a message, past any stop timeout."""
    args = ["worker", "--interval", "60"]
    code, err, accepted, at_signal, found = _signal_while_sending(
        tmp_path, env, args, signal.SIGTERM
    )
    assert code == 0, err[-2000:]
    _only_the_sends_in_flight_finished(accepted, at_signal, found)


def test_sigterm_cuts_the_rate_limit_wait_short(tmp_path: Path, env):
    """With DIGEST_RATE_PER_HOUR=2 the third send waits half an hour for its slot;
    before, SIGTERM to the worker sat that wait out (past any stop timeout)."""
    args = ["worker", "--interval", "60"]
    code, err, accepted, at_signal, found = _signal_while_sending(
        tmp_path, env, args, signal.SIGTERM, {"DIGEST_RATE_PER_HOUR": "2"}
    )  # the process must end within the 60 s given to it, not after 1800 s
    assert code == 0, err[-2000:]
    assert sum(accepted.values()) == 2
    assert "rate limit (DIGEST_RATE_PER_HOUR" in err  # the wait was said, not silent
    _only_the_sends_in_flight_finished(accepted, at_signal, found)


def test_ctrl_c_during_a_run_records_the_sends_in_flight(tmp_path: Path, env):
    """Before, Ctrl-C while `digest run` sent ended the process at once, the sending
    thread with it: the message in flight stayed 'sending', its outcome unknown (sent
    again by a later run if the relay had taken it)."""
    args = ["run", "--no-fetch"]
    code, err, accepted, at_signal, found = _signal_while_sending(
        tmp_path, env, args, signal.SIGINT
    )
    assert code != 0, err[-2000:]
    _only_the_sends_in_flight_finished(accepted, at_signal, found)


def test_sigterm_during_a_run_records_the_sends_in_flight(tmp_path: Path, env):
    """Before, `digest run` took SIGTERM (systemd or docker stopping it) with Python's
    default: the process ended mid-send, the message in flight left 'sending'."""
    args = ["run", "--no-fetch", "--json"]
    code, err, accepted, at_signal, found = _signal_while_sending(
        tmp_path, env, args, signal.SIGTERM
    )
    assert code == 1, err[-2000:]
    _only_the_sends_in_flight_finished(accepted, at_signal, found)


def test_ctrl_c_twice_abandons_the_sends_in_flight_and_says_so(tmp_path: Path, env):
    """A second Ctrl-C ends `digest run --json` at once (130) with no report on stdout:
    stderr says why, and nothing the relay took is sent twice by the stop itself."""
    args = ["run", "--no-fetch", "--json"]
    code, err, accepted, at_signal, _ = _signal_while_sending(
        tmp_path, env, args, signal.SIGINT, times=2
    )
    assert code == 130, err[-2000:]
    assert "SIGINT again: stopped at once" in err, err[-2000:]
    assert set(accepted.values()) == {1} and len(accepted) <= at_signal + 2 < N


def test_a_stop_cuts_the_breaker_pause_short_while_an_edition_is_built(engine, settings):
    """While building goes on the sender has no deadline: before, a stop during the
    breaker's pause (DIGEST_RETRY_BASE_SECONDS, doubling) was only seen after it."""
    addresses = [f"held{i}@example.org" for i in range(4)]
    handler = FaultyHandler(rcpt={a: ["451 4.3.0 Try later"] * 5 for a in addresses})
    queue(engine, addresses)
    with FaultyServer(handler) as server:
        s = replace(
            settings,
            smtp_port=server.port,
            smtp_pool_size=1,
            breaker_threshold=1,
            retry_base_seconds=600,
        )
        feed = BuildFeed()  # never finished: an edition still being built
        sending = SendingThread(engine, s, SmtpTransport(s), feed, None)
        sending.start()
        wait_for(lambda: sending.sender.breaker.trips >= 1, timeout=30)
        feed.stop.set()
        sending.thread.join(timeout=30)
        assert not sending.thread.is_alive()
    report = sending.join()
    assert report.sent == 0 and report.breaker_trips == 1
    assert sum(handler.tries.values()) == 1  # no probe after the stop
    assert {d.status for d in rows(engine).values()} <= {"pending", "retrying"}
