"""The APScheduler side: jobs that follow when sources publish, a job store in the
application's database that survives restarts, one catch-up after downtime, stopping
that lets in-flight sends finish, `digest serve` under SIGTERM, structured logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from aiosmtpd.controller import Controller
from conftest import free_port, wait_for
from sqlalchemy import text
from sqlmodel import Session, select

from digest import scheduler as sched
from digest import store, subscriptions
from digest.config import Settings
from digest.logs import configure_logging, log_event
from digest.models import Digest
from digest.sources.base import PaperRecord

ZONES = {
    "tokyo@example.org": "Asia/Tokyo",
    "berlin@example.org": "Europe/Berlin",
    "newyork@example.org": "America/New_York",
    "honolulu@example.org": "Pacific/Honolulu",
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def paper(pid: str) -> PaperRecord:
    return PaperRecord(id=pid, title=f"Diffusion {pid}", abstract="diffusion", source="file")


@pytest.fixture
def quiet_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings whose only source is an empty file, so fetch jobs add nothing and the
    test decides which papers exist."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text("", encoding="utf-8")
    return replace(settings, sources=f"file:{feed}")


@pytest.fixture
def running():
    """Schedulers started by a test, stopped even when it fails."""
    started: list = []
    yield started
    for s in started:
        sched.stop_scheduler(s)


def stored_jobs(engine) -> dict[str, float]:
    with Session(engine) as session:
        rows = session.exec(text(f"SELECT id, next_run_time FROM {sched.JOBS_TABLE}"))
        return {job_id: at for job_id, at in rows}


# ---------------------------------------------------------------- job definitions


def test_fetch_jobs_follow_when_sources_publish(settings: Settings) -> None:
    s = replace(settings, sources="arxiv:cs.CL+cs.LG,huggingface,feed:https://x.org/rss")
    jobs = {j.id: j for j in sched.job_specs(s)}
    assert set(jobs) == {"fetch-arxiv", "fetch-daytime", "send-due", "prune"}
    assert jobs["fetch-arxiv"].args == ("arxiv:cs.CL+cs.LG",)
    assert jobs["fetch-daytime"].args == ("huggingface,feed:https://x.org/rss",)
    arxiv = jobs["fetch-arxiv"].trigger
    # Friday night in New York: the next announcement is Sunday 20:00; we fetch 20:30,
    # which that Sunday (8 March 2026, DST starts) is 00:30 UTC on Monday.
    friday = utc(2026, 3, 7, 2, 0)
    first = arxiv.get_next_fire_time(None, friday)
    assert first.astimezone(UTC) == utc(2026, 3, 9, 0, 30)
    second = arxiv.get_next_fire_time(first, first + timedelta(seconds=1))
    assert second.astimezone(UTC) == utc(2026, 3, 9, 2, 30)  # 22:30, late announcements
    # Thursday's is the last of the week; Friday and Saturday have none.
    thursday = arxiv.get_next_fire_time(None, utc(2026, 3, 13, 3, 0))  # Thu 23:00 EDT
    assert thursday.astimezone(UTC) == utc(2026, 3, 16, 0, 30)  # Sunday 20:30 EDT
    assert jobs["send-due"].trigger.interval == timedelta(minutes=settings.send_every_minutes)
    only_sample = {j.id for j in sched.job_specs(replace(settings, sources="sample"))}
    assert only_sample == {"fetch-daytime", "send-due", "prune"}


def test_prune_runs_daily_unless_everything_is_kept(settings: Settings) -> None:
    jobs = {j.id: j for j in sched.job_specs(settings)}
    assert jobs["prune"].trigger.interval == timedelta(days=1)
    keep_all = replace(settings, keep_messages_days=0, keep_events_days=0)
    assert "prune" not in {j.id for j in sched.job_specs(keep_all)}
    events_only = replace(settings, keep_messages_days=0, keep_events_days=90)
    assert "prune" in {j.id for j in sched.job_specs(events_only)}


def test_the_prune_job_deletes_old_emails_of_finished_digests(
    quiet_settings: Settings, engine, smtp_sink, running
) -> None:
    store.merge_papers(engine, [paper("p-0")])
    subscriptions.subscribe(engine, quiet_settings, "ada@example.org", "diffusion")
    with time_machine.travel(utc(2026, 3, 2, 0, 0), tick=False):
        s = sched.start_scheduler(engine, quiet_settings, catch_up=False)
        running.append(s)
        sched.send_job()
        (row,) = store.digests_for_edition(engine)
        assert row.status == "sent" and row.message
        sched.prune_job()  # the same day: kept
        assert store.digests_for_edition(engine)[0].message
        sched.stop_scheduler(running.pop())
    with time_machine.travel(utc(2026, 3, 10, 0, 0), tick=False):
        running.append(sched.start_scheduler(engine, quiet_settings, catch_up=False))
        assert "prune" in stored_jobs(engine)
        sched.prune_job()
    # the 2 March digest: the restarted scheduler may also have run its missed send
    # job in the background by now, which builds (and sends) the 10 March edition
    (row,) = store.digests_for_edition(engine, "2026-03-02")
    assert row.status == "sent" and row.message is None and row.paper_ids == ["p-0"]


# ---------------------------------------------------------------- restart, catch-up


def test_restart_after_three_days_sends_one_catch_up(
    quiet_settings: Settings, engine, smtp_sink, running
) -> None:
    settings = quiet_settings
    store.merge_papers(engine, [paper("p-0")])
    for address, zone in ZONES.items():
        subscriptions.subscribe(engine, settings, address, "diffusion", timezone=zone)

    with time_machine.travel(utc(2026, 10, 24, 0, 0), tick=True):
        s = sched.start_scheduler(engine, settings)
        running.append(s)
        wait_for(lambda: len(smtp_sink.messages()) == 4)  # first digests, at once
        jobs = stored_jobs(engine)
        assert {"fetch-daytime", "send-due"} <= set(jobs)  # persisted in our database
        sched.stop_scheduler(s)
        running.remove(s)
    send_due_at = stored_jobs(engine)["send-due"]

    # Three days down; papers keep arriving (another process fetched them).
    with time_machine.travel(utc(2026, 10, 27, 0, 0), tick=False):
        store.merge_papers(engine, [paper(f"p-{i}") for i in range(1, 7)])

    with time_machine.travel(utc(2026, 10, 27, 12, 0), tick=True):
        # No start-up catch-up job: the stored, missed `send-due` run alone must do it,
        # once (coalesced), not once per missed five minutes.
        s = sched.start_scheduler(engine, settings, catch_up=False)
        running.append(s)
        wait_for(lambda: len(smtp_sink.messages()) == 8)
        wait_for(lambda: stored_jobs(engine)["send-due"] > send_due_at + 86400)
        sched.stop_scheduler(s)
        running.remove(s)
    by = smtp_sink.by_recipient()
    assert {k: len(v) for k, v in by.items()} == {a: 2 for a in ZONES}
    with Session(engine) as session:
        rows = list(session.exec(select(Digest).order_by(Digest.id)))
    catch_up = rows[4:]
    assert all(r.status == "sent" for r in rows)
    for row in catch_up:
        assert row.paper_ids == [f"p-{i}" for i in range(1, 7)], row.recipient
    for msg in by["tokyo@example.org"][1:]:
        body = msg.get_body(preferencelist=("plain",)).get_content()
        assert all(f"Diffusion p-{i}" in body for i in range(1, 7))


def test_catch_up_digest_holds_what_was_published_while_down(
    quiet_settings: Settings, engine, smtp_sink, running
) -> None:
    """On start-up the catch-up fetch runs before any send, even though the stored
    `send-due` run is overdue too: the one catch-up digest has the new papers."""
    settings = quiet_settings
    feed = Path(settings.sources.removeprefix("file:"))
    for address, zone in ZONES.items():
        subscriptions.subscribe(engine, settings, address, "diffusion", timezone=zone)
    with time_machine.travel(utc(2026, 3, 2, 0, 0), tick=False):
        store.merge_papers(engine, [paper("old-1")])
    with time_machine.travel(utc(2026, 3, 2, 0, 5), tick=True):
        running.append(sched.start_scheduler(engine, settings))
        wait_for(lambda: len(smtp_sink.messages()) == 4)
        sched.stop_scheduler(running.pop())
    feed.write_text(
        "".join(
            json.dumps({"id": f"new-{i}", "title": f"Diffusion new-{i}", "abstract": "x"}) + "\n"
            for i in range(5)
        )
    )
    with time_machine.travel(utc(2026, 3, 5, 12, 0), tick=True):
        running.append(sched.start_scheduler(engine, settings))
        wait_for(lambda: len(smtp_sink.messages()) == 8)
        sched.stop_scheduler(running.pop())
    rows = store.digests_for_edition(engine)[4:]
    assert len(rows) == 4
    for row in rows:
        assert sorted(row.paper_ids) == [f"new-{i}" for i in range(5)], row.recipient


def test_changed_settings_replace_stored_jobs(quiet_settings: Settings, engine, running) -> None:
    s = sched.start_scheduler(engine, quiet_settings, catch_up=False)
    running.append(s)
    assert s.get_job("send-due").trigger.interval == timedelta(minutes=5)
    sched.stop_scheduler(s)
    running.remove(s)
    faster = replace(quiet_settings, send_every_minutes=2, sources="arxiv:cs.CL")
    s = sched.start_scheduler(engine, faster, catch_up=False)
    running.append(s)
    assert s.get_job("send-due").trigger.interval == timedelta(minutes=2)
    assert s.get_job("fetch-daytime") is None and s.get_job("fetch-arxiv") is not None
    assert set(stored_jobs(engine)) == {"fetch-arxiv", "send-due", "prune"}


# ---------------------------------------------------------------- stopping


class GateHandler:
    """An SMTP server that holds each message until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.received: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.entered.set()
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


def test_stop_waits_for_in_flight_sends(quiet_settings: Settings, engine, running) -> None:
    handler = GateHandler()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = replace(quiet_settings, smtp_port=port)
        store.merge_papers(engine, [paper("p-1")])
        subscriptions.subscribe(engine, settings, "ada@example.org", "diffusion")
        s = sched.start_scheduler(engine, settings)
        running.append(s)
        assert handler.entered.wait(20), "the send never started"
        stopper = threading.Thread(target=sched.stop_scheduler, args=(s,))
        stopper.start()
        stopper.join(0.3)  # bounded: stop must still be waiting for the send
        assert stopper.is_alive()
        handler.gate.set()
        stopper.join(30)
        assert not stopper.is_alive()
        running.remove(s)
        assert handler.received == ["ada@example.org"]
        rows = store.digests_for_edition(engine)
        assert [r.status for r in rows] == ["sent"]
    finally:
        handler.gate.set()
        controller.stop()


def test_one_scheduler_per_process(quiet_settings: Settings, engine, running) -> None:
    running.append(sched.start_scheduler(engine, quiet_settings, catch_up=False))
    with pytest.raises(RuntimeError):
        sched.start_scheduler(engine, quiet_settings)


# ---------------------------------------------------------------- status


def test_status_info_reports_fetches_jobs_and_next_digests(
    settings: Settings, engine, smtp_sink, running
) -> None:
    subscriptions.subscribe(
        engine, settings, "tokyo@example.org", "diffusion", timezone="Asia/Tokyo", send_at="07:30"
    )
    subscriptions.subscribe(
        engine,
        settings,
        "berlin@example.org",
        "diffusion",
        timezone="Europe/Berlin",
        send_at="07:30",
        frequency="weekly",
        weekday="mon",
    )
    now = utc(2026, 3, 28, 12, 0)  # Saturday; Berlin changes to summer time tomorrow
    before = sched.status_info(engine, settings, now)
    assert before["sources"] == []
    assert before["next_runs"] == []  # no scheduler has run: nothing is planned
    assert before["scheduler"]["has_run"] is False
    # Never served: their first digest goes at the next run, keyed by their local date.
    assert before["next_digests"] == [
        {"email": "berlin@example.org", "edition": "2026-03-28", "at": now.isoformat()},
        {"email": "tokyo@example.org", "edition": "2026-03-28", "at": now.isoformat()},
    ]
    s = sched.start_scheduler(engine, settings)  # the catch-up fetches `sample`
    running.append(s)
    wait_for(lambda: sched.status_info(engine, settings)["sources"])
    info = sched.status_info(engine, settings)
    assert info["sources"][0]["source"] == "sample"
    assert info["sources"][0]["last_status"] == "ok"
    assert info["sources"][0]["last_counts"]["new"] > 0
    stored = {r["job"]: r["next_run_at"] for r in info["next_runs"]}
    assert stored["send-due"] == s.get_job("send-due").next_run_time.astimezone(UTC).isoformat()
    json.dumps(info)  # it is what `digest status --json` prints


# ---------------------------------------------------------------- logs


def test_logs_are_one_line_per_event_json_or_text() -> None:
    stream = io.StringIO()
    handler = configure_logging("json", "info", stream)
    try:
        log = logging.getLogger("digest.test")
        log_event(log, "send.done", sent=3, recipient="a@b.org\r\nBcc: x@y.org")
        log_event(log, "debug.noise", logging.DEBUG, x=1)
        lines = stream.getvalue().splitlines()
        assert len(lines) == 1
        data = json.loads(lines[0])
        assert data["event"] == "send.done" and data["sent"] == 3 and data["level"] == "info"
        assert data["recipient"] == "a@b.org\r\nBcc: x@y.org"

        stream.truncate(0)
        stream.seek(0)
        configure_logging("text", "debug", stream)
        log_event(log, "fetch.done", source="arxiv:cs.CL", errors=0, note="two\nlines")
        out = stream.getvalue()
        assert out.count("\n") == 1
        assert "fetch.done source=arxiv:cs.CL errors=0 note=two\\nlines" in out
    finally:
        for name in ("digest", "apscheduler", "uvicorn"):
            logging.getLogger(name).removeHandler(handler)


def test_serve_stops_cleanly_on_sigterm(env: dict[str, str], tmp_path: Path, smtp_sink) -> None:
    """`digest serve` (web app and scheduler): SIGTERM -> in-flight work done, exit 0,
    every log line one JSON object."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        json.dumps({"id": "p-1", "title": "Diffusion p-1", "abstract": "diffusion"}) + "\n"
    )
    run_env = {
        **env,
        "DIGEST_LOG_FORMAT": "json",
        "DIGEST_SOURCES": f"file:{feed}",
        "DIGEST_HTTP_PORT": str(free_port()),
    }
    sub = subprocess.run(
        [sys.executable, "-m", "digest", "subscribe", "ada@example.org", "-k", "diffusion"],
        env=run_env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sub.returncode == 0, sub.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve"],
        env=run_env, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(smtp_sink.messages()) == 1, timeout=60)
        wait_for(lambda: any('"send.done"' in line for line in lines), timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    events = [json.loads(line)["event"] for line in lines if line.strip()]
    assert {"scheduler.started", "fetch.done", "send.done"} <= set(events)
    assert events[-1] == "scheduler.stopped"
    assert events.index("signal") < events.index("scheduler.stopped")


def test_scheduler_only_mode_stops_on_sigterm(quiet_settings: Settings, engine, smtp_sink) -> None:
    store.merge_papers(engine, [paper("p-1")])
    subscriptions.subscribe(engine, quiet_settings, "ada@example.org", "diffusion")

    def terminate_after_the_send() -> None:
        try:
            wait_for(lambda: len(smtp_sink.messages()) == 1, timeout=60)
        finally:  # even on a timeout: fail on the assertion below, never hang an hour
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_after_the_send)
    killer.start()
    try:
        assert sched.serve_forever(engine, quiet_settings) == 0
    finally:
        killer.join(30)
        for name in ("digest", "apscheduler", "uvicorn"):
            for h in list(logging.getLogger(name).handlers):
                logging.getLogger(name).removeHandler(h)
    assert [r.status for r in store.digests_for_edition(engine)] == ["sent"]


def test_web_server_records_are_events_too() -> None:
    stream = io.StringIO()
    handler = configure_logging("json", "info", stream)
    try:
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            logging.getLogger("uvicorn.error").error("Exception in ASGI application",
                                                     exc_info=sys.exc_info())  # fmt: skip
        lines = stream.getvalue().splitlines()
        assert len(lines) == 1
        data = json.loads(lines[0])
        assert data["event"] == "Exception in ASGI application"
        assert data["level"] == "error" and "RuntimeError: boom" in data["error"]
    finally:
        for name in ("digest", "apscheduler", "uvicorn"):
            logging.getLogger(name).removeHandler(handler)
