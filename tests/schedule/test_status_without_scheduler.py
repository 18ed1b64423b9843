"""`digest status` tells the truth about the scheduler: none has run (so nothing runs
on its own), or when it was last alive and what it stored as its next runs."""

from __future__ import annotations

import json
from datetime import timedelta

from digest import scheduler as sched
from digest.models import utcnow


def test_status_says_no_scheduler_has_run(cli):
    assert cli("subscribe", "ada@example.org", "-k", "diffusion").code == 0
    data = json.loads(cli("status", "--json").stdout)
    assert data["next_runs"] == []
    assert data["scheduler"] == {"has_run": False, "last_alive_at": None, "overdue": False}
    text = cli("status")
    assert text.code == 0, text.stderr
    assert "no scheduler has run" in text.stdout
    assert "next send-due" not in text.stdout and "next fetch" not in text.stdout


def test_status_shows_the_stored_runs_and_when_the_scheduler_was_last_alive(engine, settings):
    s = sched.start_scheduler(engine, settings, catch_up=False)
    try:
        # Each interval job's next run less its interval: when it last ran, or was added.
        alive = max(j.next_run_time - j.trigger.interval for j in s.get_jobs())
    finally:
        sched.stop_scheduler(s)
    now = utcnow()
    info = sched.status_info(engine, settings, now)
    assert info["scheduler"]["has_run"] is True
    assert {r["job"] for r in info["next_runs"]} == {"fetch-daytime", "send-due", "prune"}
    assert info["scheduler"]["last_alive_at"] == min(alive, now).isoformat()
    assert info["scheduler"]["overdue"] is False
    later = sched.status_info(engine, settings, now + timedelta(days=1))
    assert later["scheduler"]["overdue"] is True  # its runs passed: it is not running
