"""Issue 16 item 12: a SIGKILL mid-send duplicates at most what was really in flight.

`digest run` sends an edition to a few hundred subscribers through a real SMTP server
on loopback and is SIGKILLed twice mid-send, then run again to completion. Every
subscriber gets the edition, and each kill duplicates no more messages than the pool
has connections (each connection's result is recorded before its next message).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import relay_env, run_cli, subscribe_many, wait_for
from fault_smtp import FaultyHandler, FaultyServer

SUBSCRIBERS = 300
POOL = 4
KILLS = 2
KILL_AFTER = 60  # acceptances into a run before it is killed


def test_each_kill_duplicates_at_most_one_message_per_connection(tmp_path: Path, env):
    addresses = [f"reader{i:03d}@example.org" for i in range(SUBSCRIBERS)]
    # A little time per DATA, as a real relay takes, so that kills land mid-send.
    handler = FaultyHandler(delay=0.005)
    with FaultyServer(handler) as server:
        run_env = relay_env(env, server.port, smtp_pool_size=POOL)
        subscribe_many(run_env, addresses, "language, model, learning")
        accepted_at_kill: list[int] = []
        for _ in range(KILLS):
            before = len(handler.accepted)
            proc = subprocess.Popen(
                [sys.executable, "-m", "digest", "run"],
                env=run_env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for(
                lambda b=before, p=proc: (
                    len(handler.accepted) >= b + KILL_AFTER or p.poll() is not None
                ),
                timeout=60,
                interval=0.002,
            )
            assert proc.poll() is None, "the run finished before the kill; nothing was tested"
            proc.kill()  # SIGKILL: no cleanup of any kind
            proc.wait()
            accepted_at_kill.append(len(handler.accepted))
        final = run_cli(["run"], run_env, cwd=tmp_path, timeout=120)
        assert final.code == 0, final.stdout + final.stderr

    got = Counter(a.recipient for a in handler.accepted)
    missing = [a for a in addresses if not got[a]]
    assert not missing, f"{len(missing)} subscribers never got the edition"
    duplicates = sum(got.values()) - SUBSCRIBERS
    assert all(n < SUBSCRIBERS for n in accepted_at_kill), accepted_at_kill  # mid-send
    assert duplicates <= POOL * KILLS, (
        f"{duplicates} duplicates after {KILLS} kills; at most {POOL} per kill expected"
    )
