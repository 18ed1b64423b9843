"""`digest worker` is long-running: a pass that fails on the database (here a real
SQLite file whose outbox table is briefly renamed away, as a restore or a migration
by hand would) is logged, and the worker goes on and sends once it is back."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import subscribe_many, wait_for

from digest import pipeline, store
from digest.config import load_settings


def test_the_worker_outlives_a_failing_database_and_sends_afterwards(
    tmp_path: Path, env, smtp_sink
):
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    assert not any(r.failed for r in pipeline.fetch_all(engine, settings))
    engine.dispose()
    db = sqlite3.connect(env["DIGEST_DATABASE_URL"].removeprefix("sqlite:///"), timeout=30)
    db.execute("ALTER TABLE digest RENAME TO digest_away")
    db.commit()
    stderr = tmp_path / "worker.err"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "worker", "--interval", "0.2"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_for(lambda: "worker.pass_failed" in stderr.read_text() or proc.poll() is not None)
        assert proc.poll() is None, stderr.read_text()[-2000:]  # before: exit 1
        db.execute("ALTER TABLE digest_away RENAME TO digest")
        db.commit()
        subscribe_many(env, ["back@example.org"], "model OR learning")
        wait_for(lambda: smtp_sink.messages() or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, stderr.read_text()[-2000:]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        db.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    text = stderr.read_text()
    assert "Traceback" not in text
    assert [str(m["To"]) for m in smtp_sink.messages()] == ["back@example.org"]
