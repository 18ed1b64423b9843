"""Crashes an operator's machine deals out mid-edition, with real processes: a build
worker killed (the run says so in one line and exits 1; the next run completes the
edition, nothing twice), the day after a crashed edition (its claims taken over
beside the new day's: no paper in two digests), a read-only database."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from conftest import relay_env, run_cli, strict_json, wait_for
from fault_smtp import FaultyHandler, FaultyServer
from sqlalchemy import insert, select, text
from test_pipeline_editions import NOW, _count, add_subscribers, children_of, fetch_sample

from digest import store, subscriptions
from digest.config import load_settings
from digest.models import Digest, Paper, utcnow
from digest.pipeline.editions import build_due
from digest.records import PaperRecord
from digest.store.claims import active_page, claim
from digest.store.engine import table_of
from digest.store.outbox import make_owner


def _edition(env: dict[str, str], n: int) -> tuple[str, list[str]]:
    """The sample papers and n subscribers who all get a message; (url, addresses)."""
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    fetch_sample(engine, settings)
    addresses = add_subscribers(engine, n, notify_every=1)
    engine.dispose()
    return settings.database_url, addresses


def _run(run_env: dict[str, str], cwd: Path, own_group: bool = False) -> subprocess.Popen[str]:
    """`digest run --no-fetch --json`, started (its report and log piped back);
    `own_group`: in a process group of its own, with its build workers."""
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "run", "--no-fetch", "--json"],
        env=run_env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=own_group,
    )


def test_a_killed_build_worker_fails_the_run_in_one_line_and_the_next_completes(
    tmp_path: Path, env
):
    n = 400
    url, addresses = _edition(env, n)
    handler = FaultyHandler()
    with FaultyServer(handler) as server:
        run_env = relay_env(env, server.port, edition_chunk=10, build_workers=2)
        proc = _run(run_env, tmp_path)
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


def test_the_day_after_crashed_editions_no_paper_is_in_two_digests(tmp_path, settings):
    """The runs of two days died with their claims in `building`; today's run (two
    build workers) takes them over (a subscriber's two claims in one chunk) and
    claims today's edition too (built by the other worker at the same time). Each
    paper reaches a subscriber in one digest only, and the digests' watermarks
    follow on, none lost."""
    url = f"sqlite:///{tmp_path / 'days.db'}"
    engine = store.make_engine(url)
    store.init_db(engine)
    s = replace(settings, database_url=url, edition_chunk=6, build_workers=2)
    fetch_sample(engine, s)
    n = 60
    add_subscribers(engine, n, notify_every=1)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    owner = make_owner().split("|")
    owner[1] = dead.stdout.strip()  # a process of this machine that is gone
    crashed = 12  # the dead runs' first chunks, still in `building`
    page = active_page(engine, 0, crashed)
    for day in ("2026-02-28", "2026-03-01"):
        at = datetime.fromisoformat(f"{day}T12:00:00+00:00")
        assert len(claim(engine, [(r, day) for r in page], "|".join(owner), 600, at)) == crashed
    report, _ = build_due(engine, s, NOW)
    assert report.taken_over == 2 * crashed
    assert report.done == n + 2 * crashed, report
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Digest.subscriber_id,
                Digest.status,
                Digest.paper_ids,
                Digest.paper_seq_from,
                Digest.paper_seq_to,
            )
        ).all()
    by_sub: dict[int, list] = {}
    for sid, status, ids, lo, hi in rows:
        assert status != "building"
        by_sub.setdefault(sid, []).append((lo, hi, ids))
    top = max(hi for _, _, _, _, hi in rows)
    repeated = {}
    for sid, digests in by_sub.items():
        papers = [p for _, _, ids in digests for p in ids]
        if len(papers) != len(set(papers)):
            repeated[sid] = sorted(p for p, k in Counter(papers).items() if k > 1)
        spans = sorted((lo, hi) for lo, hi, _ in digests)
        # one after another from the first digest's start to the newest paper
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans)), (sid, spans)
        assert spans[-1][1] == top, (sid, spans)
    assert not repeated, f"{len(repeated)} subscriber(s) got papers twice: {repeated}"
    engine.dispose()


def test_unsubscribed_or_deleted_mid_edition_gets_nothing(tmp_path: Path, env):
    """While `digest run` is sending (slow relay), one reader unsubscribes and another
    is deleted: neither gets the edition (the sender started before they left, so
    its start-up check did not see them; their rows are claimed after they left: the
    sender holds up to 200 claimed rows at a time), everyone else gets it once."""
    n = 260
    url, addresses = _edition(env, n)
    leaving, deleted = addresses[-3], addresses[-2]
    handler = FaultyHandler(delay=0.05)
    with FaultyServer(handler) as server:
        run_env = relay_env(env, server.port, smtp_pool_size=1, edition_chunk=20)
        proc = _run(run_env, tmp_path)
        # every digest built (and queued) before they leave
        wait_for(
            lambda: (
                proc.poll() is not None
                or _count(url, Digest.status == "building") == 0
                and _count(url) == n
            ),
            timeout=120,
        )
        assert proc.poll() is None, "the run finished first; nothing was tested"
        # what `digest unsubscribe` and `digest delete` (and the web's) do
        other = store.make_engine(url)
        store.update_subscriber(other, leaving, status="unsubscribed", unsubscribed_at=utcnow())
        assert subscriptions.delete(other, deleted).changed
        other.dispose()
        assert len(handler.accepted) < 90, "the sender claimed their rows before they left"
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert strict_json(out)["sent"] == n - 2
    got = Counter(a.recipient for a in handler.accepted)
    assert sorted(got) == sorted(set(addresses) - {leaving, deleted})
    assert set(got.values()) == {1}
    assert _count(url, Digest.status == "failed") == 1  # the one who left, not sent


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_run_killed_alone_at_each_stage_takes_its_workers_along_and_loses_nothing(
    tmp_path: Path, env
):
    """`digest run` alone (not its process group) is SIGKILLed while claiming, while
    its forked build workers are mid-chunk, with digests committed but not sent, and
    while sending: its zygote and workers die with it (nothing keeps building for a
    dead run), and the run after completes the edition: each subscriber gets it, with
    duplicates only from the sends in flight at the kill."""
    n, pool = 300, 2
    url, addresses = _edition(env, n)
    handler = FaultyHandler(delay=0.01)
    stages = {
        "claiming": lambda: _count(url) > 0,
        "mid-chunk": lambda: (
            _count(url, Digest.status == "building") > 0
            and _count(url, Digest.status != "building") > 0
        ),
        "committed, not sent": lambda: _count(url, Digest.status == "pending") > 0,
        "sending": lambda: len(handler.accepted) >= 20,
    }
    with FaultyServer(handler) as server:
        run_env = relay_env(
            env, server.port, smtp_pool_size=pool, edition_chunk=10, build_workers=2
        )
        kills = 0
        for stage, reached in stages.items():
            before = len(handler.accepted)
            proc = subprocess.Popen(
                [sys.executable, "-m", "digest", "run", "--no-fetch"],
                env=run_env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            family: set[int] = set()

            def at_stage(proc=proc, family=family, reached=reached) -> bool:
                for zygote in children_of(proc.pid):
                    family.add(zygote)
                    family.update(children_of(zygote))
                return proc.poll() is not None or reached()

            wait_for(at_stage, timeout=120, interval=0.002)
            if proc.poll() is not None:
                continue  # the edition was done before this stage came
            proc.kill()
            proc.wait()
            kills += 1
            wait_for(lambda family=family: not any(_alive(p) for p in family), timeout=30)
            assert len(handler.accepted) - before < n, f"{stage}: the run had sent it all"
        assert kills >= 3, kills
        final = run_cli(["run", "--no-fetch", "--json"], run_env, cwd=tmp_path, timeout=300)
        assert final.code == 0, final.stdout + final.stderr
    got = Counter(a.recipient for a in handler.accepted)
    assert sorted(got) == addresses, "some subscriber never got the edition"
    assert sum(c - 1 for c in got.values()) <= pool * kills
    assert _count(url, Digest.status == "sent") == _count(url) == n


def test_an_edition_never_covers_a_paper_still_being_stored(postgres_url, settings):
    """PostgreSQL hands out paper seqs before commit: a fetch that took seq 51 and
    commits after another fetch's 52 would leave 51 invisible to an edition reading
    52 as its newest paper, and every watermark moved to 52 would skip 51 for good.
    The edition's newest paper is read once every paper below it is committed."""
    engine = store.make_engine(postgres_url)
    store.init_db(engine)
    fetch_sample(engine, replace(settings, database_url=postgres_url))
    slow = engine.connect()
    slow_tx = slow.begin()  # a fetch still storing its paper (seq taken, not committed)
    slow.execute(insert(table_of(Paper)).values(**_paper("slow-1")))
    store.merge_papers(
        engine, [PaperRecord(id="fast-1", title="Fast", abstract="x", source="test")]
    )
    seen: dict[str, object] = {}

    def read_top() -> None:
        top = store.max_paper_seq(engine)
        seen["top"] = top
        seen["visible"] = {p.id for p in store.papers_after(engine, 0, top)}

    reader = threading.Thread(target=read_top)
    reader.start()
    with engine.connect() as conn:
        waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
        wait_for(lambda: not reader.is_alive() or conn.execute(waiting).scalar_one() > 0)
    slow_tx.commit()
    slow.close()
    reader.join(30)
    assert not reader.is_alive()
    covered = {p.id for p in store.papers_after(engine, 0, seen["top"])}
    assert covered == seen["visible"], covered - seen["visible"]
    assert {"slow-1", "fast-1"} <= covered
    engine.dispose()


def _paper(pid: str) -> dict:
    now = utcnow()
    return {
        "id": pid,
        "title": f"Paper {pid}",
        "abstract": "x",
        "authors": [],
        "categories": [],
        "ai_keywords": [],
        "sources": ["test"],
        "first_seen": now,
        "updated_at": now,
    }


def _fail_writes(engine: store.Engine, event: str, when: str) -> None:
    """A trigger that fails an `event` ("INSERT", "UPDATE OF status") on the digests
    table as a full disk would, while `when` (SQL; `{table}` names the table) holds."""
    table = table_of(Digest).name
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TRIGGER injected_fault AFTER {event} ON {table} "
                f"WHEN {when.format(table=table)} "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full (injected)'); END"
            )
        )


def test_a_database_error_mid_build_still_prints_the_report(tmp_path: Path, env):
    """Before, `digest run --json` printed only `error: database: ...` when a write
    failed mid-edition: what was built and sent before the fault went unreported.
    A trigger makes the 31st claim fail as a full disk would."""
    n = 60
    url, addresses = _edition(env, n)
    engine = store.make_engine(url)
    _fail_writes(engine, "INSERT", "(SELECT count(*) FROM {table}) > 30")
    handler = FaultyHandler()
    with FaultyServer(handler) as server:
        run_env = relay_env(env, server.port, edition_chunk=10, build_workers=2)
        got = run_cli(["run", "--no-fetch", "--json"], run_env, cwd=tmp_path, timeout=300)
        assert got.code == 1, got.stdout + got.stderr
        assert "Traceback" not in got.stderr, got.stderr[-3000:]
        report = strict_json(got.stdout)
        assert report["error"] == "database: database or disk is full (injected)", report
        assert report["build_broken"].startswith(report["error"]) and not report["ok"]
        assert report["built"] + report["nothing_new"] == 30
        assert report["sent"] == len(handler.accepted) == _count(url, Digest.status == "sent")
        assert _count(url, Digest.status == "building") == 0  # claims given back
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER injected_fault"))
        final = run_cli(["run", "--no-fetch", "--json"], run_env, cwd=tmp_path, timeout=300)
        assert final.code == 0, final.stdout + final.stderr
    engine.dispose()
    got_by = Counter(a.recipient for a in handler.accepted)
    assert sorted(got_by) == addresses and set(got_by.values()) == {1}


def test_ctrl_c_during_the_build_prints_the_report_then_exits_130(tmp_path: Path, env):
    """Before, Ctrl-C while an edition was being built sent what was built and exited
    130 with no report. Ctrl-C reaches the whole process group (the build workers
    too, as in a terminal): the run claims nothing more, finishes the chunks and
    sends in flight, prints its report; the next run completes the edition."""
    n = 300
    url, addresses = _edition(env, n)
    handler = FaultyHandler(delay=0.02)
    with FaultyServer(handler) as server:
        run_env = relay_env(env, server.port, edition_chunk=10, build_workers=2, smtp_pool_size=1)
        proc = _run(run_env, tmp_path, own_group=True)  # as a terminal's foreground job
        try:
            wait_for(lambda: proc.poll() is not None or _count(url) > 0, timeout=120)
            assert proc.poll() is None, "the run ended before the signal"
            os.killpg(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
        report = strict_json(out)
        assert report["stopped"].startswith("SIGINT"), report
        assert report["built"] + report["nothing_new"] < n  # stopped mid-edition
        assert report["sent"] == _count(url, Digest.status == "sent") == len(handler.accepted)
        assert _count(url, Digest.status.in_(["building", "sending"])) == 0  # nothing held
        final = run_cli(["run", "--no-fetch", "--json"], run_env, cwd=tmp_path, timeout=300)
        assert final.code == 0, final.stdout + final.stderr
    got = Counter(a.recipient for a in handler.accepted)
    assert sorted(got) == addresses and set(got.values()) == {1}


def test_sends_finishing_after_a_failed_record_do_not_hang_the_sender(tmp_path: Path, env):
    """A write recording sends failed (a full disk) while other sends were still in
    flight: their results arrived after it, the writer neither recorded nor released
    them, and the pass waited for them forever (or `_flush` restarted the writer
    until RecursionError: a traceback and no report, seen with a full tmpfs). Now
    they fail with the write. `digest retry` sends four digests 100 ms apart, each
    taking 250 ms; a trigger fails the record of the second, the third and fourth
    finish after it; the hour's limit then ends the pass (its window is short)."""
    url, addresses = _edition(env, 4)
    handler = FaultyHandler(data={a: ["451 4.3.0 try again later"] for a in addresses})
    with FaultyServer(handler) as server:
        run_env = relay_env(env, server.port, run_retry_window_seconds=0)
        first = run_cli(["run", "--no-fetch", "--json"], run_env, cwd=tmp_path, timeout=120)
        assert strict_json(first.stdout)["retrying"] == 4, first.stdout
        engine = store.make_engine(url)
        sent = "NEW.status = 'sent' AND (SELECT count(*) FROM {table} WHERE status = 'sent') > 1"
        _fail_writes(engine, "UPDATE OF status", sent)
        engine.dispose()
        handler.delay = 0.25
        retry_env = relay_env(
            run_env,
            server.port,
            smtp_pool_size=4,
            rate_per_second=10,
            rate_per_hour=3,
            run_retry_window_seconds=1,
        )
        got = run_cli(["retry"], retry_env, cwd=tmp_path, timeout=60)
    assert got.code == 1, got.stdout + got.stderr[-3000:]
    assert "Traceback" not in got.stderr, got.stderr[-3000:]
    assert "database or disk is full (injected)" in got.stderr
    assert _count(url, Digest.status == "sent") == 1
    assert len(handler.accepted) == 3
