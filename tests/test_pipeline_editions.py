"""Issue 13: streaming editions. Built in chunks (in this process or a pool of worker
processes) an edition gives the same digests as built at once; a chunked `digest run`
killed mid-build and run again loses nothing; N `digest run`s on one PostgreSQL
server share an edition, each digest built by exactly one of them."""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from conftest import relay_env, run_cli, strict_json, wait_for
from fault_smtp import FaultyHandler, FaultyServer
from sqlalchemy import func, insert, select

from digest import pipeline, store, subscriptions
from digest.config import Settings, load_settings
from digest.models import Digest, DigestMessage, Subscriber, utcnow
from digest.pipeline import pool
from digest.pipeline.build import BuildReport, EditionBuilder
from digest.pipeline.editions import make_plan
from digest.store.claims import subscriber_rows
from digest.store.engine import table_of

VOCAB = [
    *("language", "model", "learning", "diffusion", "robot", "agent", "vision", "speech"),
    *("graph", "reasoning", "benchmark", "transformer", "image", "video", "audio"),
    *("policy", "reward", "retrieval", "code", "math"),
]
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def profiles(n: int) -> list[str]:
    """Diverse profiles: words, phrases, prefixes, NOT clauses; a few match nothing."""
    out = []
    for i in range(n):
        a, b, c = VOCAB[i % len(VOCAB)], VOCAB[(i * 7 + 3) % len(VOCAB)], VOCAB[(i * 5) % 19]
        kind = i % 5
        if kind == 0:
            out.append(f"{a}, {b}")
        elif kind == 1:
            out.append(f'"{a} {b}", {c[:4]}*')
        elif kind == 2:
            out.append(f"({a}, {b}) -{c}")
        elif kind == 3:
            out.append(f"{a} AND {b}")
        else:
            out.append("quantum chromodynamics" if i % 10 == 4 else f"{c}, {a}")
    return out


def add_subscribers(engine, n: int, notify_every: int = 7) -> list[str]:
    """n active subscribers in one statement (one process each would take minutes)."""
    addresses = [f"reader{i:05d}@example.org" for i in range(n)]
    rows = [
        {
            "email": address,
            "keywords": profile,
            "max_papers": 3 + i % 9,
            "status": "active",
            "timezone": "UTC",
            "send_at": "00:00",
            "frequency": "daily",
            "notify_empty": i % notify_every == 0,
            "bounces": 0,
            "token_version": 0,
            "created_at": utcnow(),
        }
        for i, (address, profile) in enumerate(zip(addresses, profiles(n), strict=True))
    ]
    with engine.begin() as conn:
        conn.execute(insert(table_of(Subscriber)), rows)
    return addresses


def fetch_sample(engine, settings: Settings) -> None:
    reports = pipeline.fetch_all(engine, replace(settings, sources="sample"))
    assert reports and not any(r.failed for r in reports)


def outbox(engine) -> dict[str, tuple[str, list[str], dict, str | None, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Digest.recipient,
                Digest.status,
                Digest.paper_ids,
                Digest.explanations,
                Digest.subject,
                DigestMessage.message,
            ).outerjoin(DigestMessage, DigestMessage.digest_id == Digest.id)
        ).all()
    return {r[0]: (r[1], r[2], r[3], r[4], r[5] or b"") for r in rows}


# Random by design in every message: its Message-ID and its MIME boundary.
RANDOM = re.compile(rb"^Message-ID: .*$|=_digest_[0-9a-f]{24}", re.M)


def test_chunked_edition_is_byte_identical_to_one_built_at_once(tmp_path, settings: Settings):
    """Same papers, order, explanations and bytes. The clock is frozen (the Date header
    and the signed links' timestamps are then equal); the Message-ID and the MIME
    boundary, random by design, are blanked."""
    built = {}
    for name, chunk in (("whole", 10_000), ("chunked", 7)):
        url = f"sqlite:///{tmp_path / name}.db"
        engine = store.make_engine(url)
        store.init_db(engine)
        s = replace(settings, database_url=url, edition_chunk=chunk, build_workers=1)
        with time_machine.travel(NOW, tick=False):
            fetch_sample(engine, s)
            add_subscribers(engine, 120)
            report, not_due = pipeline.build_due(engine, s, NOW)
        assert report.chunks == (1 if chunk > 120 else -(-120 // chunk))
        assert report.done == 120 and not_due == 0 and report.failed == 0
        built[name] = outbox(engine)
        engine.dispose()
    whole, chunked = built["whole"], built["chunked"]
    assert len(whole) == 120 and set(whole) == set(chunked)
    kinds = Counter(row[0] for row in whole.values())
    assert kinds["pending"] > 60 and kinds["empty"] > 0  # a real mix was compared
    for address, (status, papers, why, subject, message) in whole.items():
        other = chunked[address]
        assert (status, papers, why, subject) == other[:4], address
        assert RANDOM.sub(b"", message) == RANDOM.sub(b"", other[4]), address


INTERESTS = [
    "diffusion models for image and video generation",
    "robot learning and embodied agents; not interested in autonomous driving",
    "reasoning and math benchmarks for large language models",
    "speech and audio understanding",
    "retrieval augmented generation and code models",
    "",  # example papers alone
]


def test_chunked_interest_edition_ranks_as_at_once_and_indexes_papers_once(
    settings: Settings, engine
):
    """Interest profiles (some with liked papers, some fused with keywords) ranked in
    chunks of 5 give the same digests as ranked at once, and the chunks share one
    paper set: its BM25 index and keyword index are built once, not per chunk."""
    fetch_sample(engine, settings)
    ids = [p.id for p in store.list_papers(engine)]
    subs = []
    for i in range(24):
        interest = INTERESTS[i % len(INTERESTS)]
        likes = (
            [ids[(i * 7) % len(ids)], ids[(i * 11 + 3) % len(ids)]]
            if i % 3 != 1 or not interest
            else []
        )
        keywords = VOCAB[i % len(VOCAB)] if i % 4 == 2 else None
        subs.append(
            subscriptions.subscribe(
                engine, settings, f"reader{i}@example.org", keywords, interest=interest, likes=likes
            )
        )
    rows = subscriber_rows(engine, [int(s.id or 0) for s in subs])
    pairs = [(rows[int(s.id or 0)], NOW.date().isoformat(), n) for n, s in enumerate(subs)]
    with time_machine.travel(NOW, tick=False):
        plan = make_plan(engine, settings, NOW, dry_run=True)
        whole = EditionBuilder(plan, engine).build(pairs)
        builder = EditionBuilder(plan, engine)
        chunked = BuildReport()
        for lo in range(0, len(pairs), 5):
            chunked.add(builder.build(pairs[lo : lo + 5]))
    assert chunked.chunks == 5 and whole.failed == chunked.failed == 0
    assert whole.built > 12  # most got papers: a real comparison
    assert (whole.built, whole.empty) == (chunked.built, chunked.empty)
    assert [(a, RANDOM.sub(b"", m)) for a, m in whole.previews] == [
        (a, RANDOM.sub(b"", m)) for a, m in chunked.previews
    ]
    shared = builder.papers(plan.first_seq)
    assert shared.semantic is not None and shared.semantic.lexical_builds == 1
    assert shared.papers.builds == 1  # the keyword index too, shared with SemanticPapers


def _normalised_parts(message: bytes) -> list[str]:
    """A message's headers and decoded bodies with what is made at build time (the
    Message-ID, the Date, the MIME boundary, the signed links' timestamps) blanked."""
    msg = email.message_from_bytes(message, policy=email.policy.default)
    tokens = re.compile(r"/(view|manage|unsubscribe)/[A-Za-z0-9_.\-]+")
    parts = [f"{k}: {v}" for k, v in msg.items() if k not in ("Message-ID", "Date")]
    parts += [p.get_content() for p in msg.walk() if not p.is_multipart()]
    return [tokens.sub(r"/\1/T", RANDOM.sub(b"", p.encode()).decode()) for p in parts]


def test_an_edition_built_by_worker_processes_matches_one_built_here(
    tmp_path, settings: Settings, monkeypatch
):
    """Two worker processes (spawned: they re-create their renderer and papers) give
    the same digests as this process alone, chunk for chunk, also when each worker is
    replaced after every chunk (as it is, for flat memory, after WORKER_DIGESTS), and
    one subscriber whose digest cannot be rendered fails alone, visibly, its papers
    kept."""
    built = {}
    for name, workers in (("here", 1), ("pool", 2), ("replaced", 2)):
        if name == "replaced":
            monkeypatch.setattr(pool, "WORKER_DIGESTS", 25)
            assert pool.chunks_per_worker(replace(settings, edition_chunk=25)) == 1
        url = f"sqlite:///{tmp_path / name}.db"
        engine = store.make_engine(url)
        store.init_db(engine)
        s = replace(settings, database_url=url, edition_chunk=25, build_workers=workers)
        fetch_sample(engine, s)
        add_subscribers(engine, 100)
        store.add_subscriber(  # stored by hand: not an address a message can carry
            engine, Subscriber(email="broken address@example.org", keywords="model")
        )
        report, _ = pipeline.build_due(engine, s, utcnow())
        assert report.done == 101 and report.chunks == 5
        assert report.failed == 1 and "broken address@example.org" in report.errors[0]
        broken = store.get_subscriber(engine, "broken address@example.org")
        assert broken is not None and broken.last_paper_seq is None
        built[name] = outbox(engine)
        engine.dispose()
    for name in ("pool", "replaced"):
        assert built["here"].keys() == built[name].keys()
        for address, (status, papers, why, subject, message) in built["here"].items():
            other = built[name][address]
            assert (status, papers, why, subject) == other[:4], address
            assert _normalised_parts(message) == _normalised_parts(other[4]), address
        assert built[name]["broken address@example.org"][0] == "failed"


def test_hostile_stored_profiles_fail_no_one(tmp_path, settings: Settings, engine):
    """Stored profiles are compiled leniently: not even a hostile one stops a chunk;
    each such subscriber gets their row, and everyone else their digest."""
    fetch_sample(engine, settings)
    good = add_subscribers(engine, 30)
    hostile = [
        "(" * 5000 + "model",
        "a" * 200_000,
        "topic:no-such-topic",
        "author:\x00\r\n<script>",
        '"' + "model " * 3000 + '"',
    ]
    for i, keywords in enumerate(hostile):
        store.add_subscriber(
            engine, Subscriber(email=f"odd{i}@example.org", keywords=keywords, min_score=1e300)
        )
    report, _ = pipeline.build_due(engine, replace(settings, edition_chunk=8), utcnow())
    assert report.failed == 0 and report.done == len(good) + len(hostile)
    rows = outbox(engine)
    assert all(rows[f"odd{i}@example.org"][0] == "empty" for i in range(len(hostile)))
    assert sum(1 for a in good if rows[a][0] == "pending") > 15


# ---------------------------------------------------------------- processes


def _count(url: str, *where) -> int:
    engine = store.make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(Digest).where(*where)).scalar_one()
    finally:
        engine.dispose()


def test_a_chunked_run_killed_mid_build_loses_nothing(tmp_path: Path, env):
    """`digest run` (two build workers, small chunks) is SIGKILLed, with its workers,
    while the edition is half built and half sent; the next run takes over the dead
    run's claims at once (its process is gone), and in the end every subscriber has
    the edition, with duplicates only from the sends in flight at the kill."""
    n, pool = 600, 4
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    fetch_sample(engine, settings)
    addresses = add_subscribers(engine, n, notify_every=1)  # everyone gets a message
    engine.dispose()
    handler = FaultyHandler(delay=0.002)
    with FaultyServer(handler) as server:
        run_env = relay_env(
            env, server.port, smtp_pool_size=pool, edition_chunk=20, build_workers=2
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "run", "--no-fetch"],
            env=run_env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its build workers share its process group
        )
        url = settings.database_url
        wait_for(
            lambda: proc.poll() is not None or (len(handler.accepted) >= 20),
            timeout=120,
            interval=0.005,
        )
        assert proc.poll() is None, "the run finished before the kill; nothing was tested"
        os.killpg(proc.pid, signal.SIGKILL)  # no cleanup of any kind, workers too
        proc.wait()
        built_at_kill = _count(url, Digest.status != "building")
        assert built_at_kill < n, "the edition was fully built before the kill"
        accepted_at_kill = len(handler.accepted)
        final = run_cli(["run", "--no-fetch", "--json"], run_env, cwd=tmp_path, timeout=300)
        assert final.code == 0, final.stdout + final.stderr
        report = strict_json(final.stdout)
        again = run_cli(["run", "--no-fetch", "--json"], run_env, cwd=tmp_path, timeout=120)
        assert again.code == 0 and strict_json(again.stdout)["sent"] == 0, again.stdout

    got = Counter(a.recipient for a in handler.accepted)
    assert sorted(got) == addresses, "some subscriber never got the edition"
    duplicates = sum(c - 1 for c in got.values())
    assert duplicates <= pool, (duplicates, accepted_at_kill)
    assert _count(url, Digest.status == "sent") == _count(url) == n
    # The rerun built exactly what the killed run had not: nothing twice.
    assert report["built"] + report["nothing_new"] == n - built_at_kill
    # Those the killed run finished are not due again (its claims were taken over).
    assert report["already"] + report["not_due"] == built_at_kill
    assert report["taken_over"] > 0


def test_four_runs_on_postgresql_share_an_edition(tmp_path: Path, env, postgres_url, smtp_sink):
    n = 2500
    pg_env = {
        **env,
        "DIGEST_DATABASE_URL": postgres_url,
        "DIGEST_EDITION_CHUNK": "100",
        "DIGEST_BUILD_WORKERS": "1",
    }
    settings = load_settings(environ=pg_env, env_file=None)
    engine = store.make_engine(postgres_url)
    store.init_db(engine)
    fetch_sample(engine, settings)
    addresses = add_subscribers(engine, n, notify_every=1)
    engine.dispose()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "digest", "run", "--now", "--no-fetch", "--json"],
            env=pg_env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, (out[-2000:], err[-2000:])
        assert "Traceback" not in err
    reports = [strict_json(out) for out, _ in outs]
    assert sum(r["built"] + r["nothing_new"] for r in reports) == n  # each built once
    assert sum(r["empty"] + r["failed"] for r in reports) == 0
    assert sum(r["sent"] for r in reports) == n
    for r in reports:  # every process saw every subscriber: built by it or another
        assert r["built"] + r["nothing_new"] + r["already"] == n
    assert sum(1 for r in reports if r["built"]) >= 2, "one process did all the work"
    got = Counter(str(m["To"]) for m in smtp_sink.messages())
    assert sorted(got) == addresses and set(got.values()) == {1}
    assert _count(postgres_url, Digest.status == "sent") == n


def test_worker_builds_and_sends_until_sigterm(tmp_path: Path, env, smtp_sink):
    """`digest worker` builds and sends what came due, pass after pass, and on SIGTERM
    finishes its pass and exits 0; each pass is one JSON line under --json."""
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    fetch_sample(engine, settings)
    addresses = add_subscribers(engine, 40, notify_every=1)
    engine.dispose()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "worker", "--interval", "0.2", "--json"],
        env={**env, "DIGEST_EDITION_CHUNK": "15"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(smtp_sink.messages()) >= 40 or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    passes = [strict_json(line) for line in out.splitlines() if line.strip()]
    assert len(passes) >= 1
    assert sum(p["built"] + p["nothing_new"] for p in passes) == 40
    assert sum(p["sent"] for p in passes) == 40
    got = Counter(str(m["To"]) for m in smtp_sink.messages())
    assert sorted(got) == addresses and set(got.values()) == {1}


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if entry.name.isdigit():
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def test_forked_build_workers_break_visibly_when_one_dies(tmp_path, settings: Settings):
    """A build worker (or the zygote) killed breaks the pool as it breaks a process
    pool executor: the chunks in flight and after fail with BrokenProcessPool, nothing
    hangs (an idle worker dies holding the task queue's lock), and the claims of the
    chunks not built stay in `building` for the next run to take over."""
    from concurrent.futures.process import BrokenProcessPool

    from digest.pipeline.forked import ForkedWorkers, Tuning
    from digest.store.claims import active_page, claim, count_building

    url = f"sqlite:///{tmp_path / 'forked.db'}"
    engine = store.make_engine(url)
    store.init_db(engine)
    s = replace(settings, database_url=url, edition_chunk=10)
    fetch_sample(engine, s)
    add_subscribers(engine, 40)
    plan = make_plan(engine, s, NOW, dry_run=False)
    page = active_page(engine, 0, 40)
    claims = claim(engine, [(r, "2026-03-02") for r in page], plan.owner, 60, NOW)
    chunks = [claims[i : i + 10] for i in range(0, 40, 10)]
    tuning = Tuning(2, 100, pool.GC_THRESHOLDS, pool._release_freed_memory)
    for victim in ("worker", "zygote"):
        workers = ForkedWorkers(plan, tuning)
        try:
            if victim == "worker":
                assert workers.submit(chunks[0]).result(timeout=120).done == 10  # the zygote
                assert workers.submit(chunks[1]).result(timeout=120).done == 10  # a worker
                pid = children_of(workers.zygote.pid)[0]  # a forked build worker
                os.kill(pid, signal.SIGKILL)
            else:
                workers.zygote.kill()
            wait_for(lambda w=workers: w.broken is not None, timeout=60)
            with pytest.raises(BrokenProcessPool):
                workers.submit(chunks[2]).result(timeout=60)
        finally:
            workers.shutdown()
    assert count_building(engine) == 20
    engine.dispose()
