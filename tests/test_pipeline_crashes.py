"""Crashes an operator's machine deals out mid-edition, with real processes: a build
worker killed (the run says so in one line and exits 1; the next run completes the
edition, nothing twice), the day after a crashed edition (its claims taken over
beside the new day's: no paper in two digests), a read-only database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import run_cli, strict_json, wait_for
from fault_smtp import FaultyHandler, FaultyServer
from test_pipeline_editions import _count, add_subscribers, children_of, fetch_sample

from digest import store
from digest.config import load_settings
from digest.models import Digest


def test_a_killed_build_worker_fails_the_run_in_one_line_and_the_next_completes(
    tmp_path: Path, env
):
    n = 400
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    fetch_sample(engine, settings)
    addresses = add_subscribers(engine, n, notify_every=1)
    engine.dispose()
    handler = FaultyHandler()
    with FaultyServer(handler) as server:
        run_env = {
            **env,
            "DIGEST_SMTP_PORT": str(server.port),
            "DIGEST_EDITION_CHUNK": "10",
            "DIGEST_BUILD_WORKERS": "2",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "run", "--no-fetch", "--json"],
            env=run_env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = settings.database_url
        workers: list[int] = []

        def a_worker_builds() -> bool:
            if proc.poll() is not None:
                return True
            for zygote in children_of(proc.pid):
                workers[:] = children_of(zygote)
            return bool(workers) and _count(url, Digest.status == "pending") > 0

        wait_for(a_worker_builds, timeout=120, interval=0.005)
        assert proc.poll() is None, "the run finished before the kill; nothing was tested"
        os.kill(workers[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
        # One line, the JSON report of what was done, exit 1; what was built is sent.
        assert proc.returncode == 1, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        report = strict_json(out)
        assert "a build worker was killed by SIGKILL" in report["build_broken"], report
        assert report["ok"] is False
        assert report["sent"] == report["built"] + report["nothing_new"] > 0
        # its claims were given up: the next run takes them over at once
        left = _count(url, Digest.status == "building")
        assert report["unbuilt"] == left > 0
        final = run_cli(["run", "--no-fetch", "--json"], run_env, cwd=tmp_path, timeout=300)
        assert final.code == 0, final.stdout + final.stderr
        again = strict_json(final.stdout)
        assert again["taken_over"] == left
        assert again["built"] + again["nothing_new"] == n - report["sent"]
    got = Counter(a.recipient for a in handler.accepted)
    assert sorted(got) == addresses
    assert set(got.values()) == {1}
    assert _count(url, Digest.status == "sent") == _count(url) == n
