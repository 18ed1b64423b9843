"""Crash safety: `digest run` is SIGKILLed at random moments, restarted each time,
and in the end every subscriber has the edition at least once; the only duplicates
are messages the server had accepted just before a kill (the sender died before it
could record them)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from conftest import relay_env, run_cli, subscribe_many, wait_for
from fault_smtp import FaultyHandler, FaultyServer
from sqlmodel import Session, select

from digest import store
from digest.config import load_settings
from digest.models import Digest, Subscriber

SUBSCRIBERS = 200
KILLS = 5
# A result is written before its connection takes the next message (a group commit),
# plus the write itself; what the server accepted longer ago than this was recorded. A message
# whose data was already sent when the kill landed may be accepted a moment after it.
UNRECORDED_BEFORE = 1.5
IN_FLIGHT_AFTER = 0.5


def _start(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "run"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_at_random_moments_loses_nothing(tmp_path, env):
    rng = random.Random(int(os.environ.get("DIGEST_CRASH_SEED", "7")))
    addresses = [f"reader{i:03d}@example.org" for i in range(SUBSCRIBERS)]
    # Some addresses are deferred once, so retries are in the air when a kill lands.
    handler = FaultyHandler(delay=0.004, rcpt={a: ["451 4.3.0 try again"] for a in addresses[::10]})
    with FaultyServer(handler) as server:
        run_env = relay_env(
            env, server.port, smtp_pool_size=4, retry_base_seconds=0.3, run_retry_window_seconds=30
        )
        subscribe_many(run_env, addresses, "language, model, learning")
        kills: list[float] = []
        accepted_at_kill: list[int] = []
        for n in range(KILLS):
            before = len(handler.accepted)
            proc = _start(run_env, tmp_path)
            # The first kill lands at a random moment of start-up, at the latest as the
            # first message is accepted; later ones mid-send, a few acceptances in (a
            # fixed delay would overshoot the whole edition on a fast machine).
            target = before + (rng.randint(1, 30) if n else 1)
            give_up = time.monotonic() + (30 if n else rng.uniform(0.2, 2.0))
            wait_for(
                lambda t=target, p=proc, g=give_up: (
                    len(handler.accepted) >= t or p.poll() is not None or time.monotonic() > g
                ),
                timeout=40,
                interval=0.002,
            )
            try:
                proc.wait(timeout=rng.uniform(0.0, 0.05))
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL: no cleanup of any kind
                kills.append(time.time())
                accepted_at_kill.append(len(handler.accepted))
            proc.wait()
            if proc.returncode == 0:
                break
        final = run_cli(["run"], run_env, cwd=tmp_path, timeout=120)
        assert final.code == 0, final.stdout + final.stderr
        again = run_cli(["run"], run_env, cwd=tmp_path, timeout=120)
        assert again.code == 0 and "sent: 0" in again.stdout, again.stdout

    assert kills, "the run finished before any kill; nothing was tested"
    assert any(0 < n < SUBSCRIBERS for n in accepted_at_kill), (
        f"no kill landed mid-send: {accepted_at_kill}"
    )
    got = handler.by_recipient()
    missing = [a for a in addresses if a not in got]
    assert not missing, f"{len(missing)} subscribers never got the edition"
    for address, copies in got.items():
        assert len({c.message_id for c in copies}) == 1  # one edition, one message
        for early in copies[:-1]:
            assert any(-IN_FLIGHT_AFTER <= k - early.at <= UNRECORDED_BEFORE for k in kills), (
                f"{address} got a duplicate accepted at {early.at}, not just before a kill "
                f"(kills at {kills})"
            )
    settings = load_settings(environ=run_env, env_file=None)
    engine = store.make_engine(settings.database_url)
    with Session(engine) as session:
        statuses = {d.status for d in session.exec(select(Digest))}
        editions = session.exec(select(Digest)).all()
        subscribers = session.exec(select(Subscriber)).all()
    engine.dispose()
    assert statuses == {"sent"}
    assert len(editions) == len(subscribers) == SUBSCRIBERS
