"""A whole edition as an operator runs it: `digest run --now --no-fetch` as a process,
against a real database of N subscribers with diverse profiles and M papers, sending
to an SMTP sink in another process. Prints how long building and sending took (they
overlap), the peak memory of the run, how much of the card rendering could be reused,
and checks that every digest was accepted by the sink.

    .venv/bin/python bench/edition.py [--subscribers N] [--papers M] [--workers W]
        [--database-url URL | --postgres] [--sink auto|postfix|aiosmtpd] [--seed S]

The database is a fresh SQLite file by default. `--database-url` names a PostgreSQL
server on which the benchmark may create databases (one per measured run);
`--postgres` starts a throw-away server (tests/postgres_server.py). Profiles and
papers come from bench/workload.py (words of the seed corpus by Zipf, phrases,
prefixes, topics, NOT clauses, authors, categories, per-subscriber max_papers).

`--workers W` (W > 1) starts W `digest run` processes at once on one edition, after
a run with one process on an identical database, and prints the ratio.

Build time is from the start until every run process logged `run.built`; send time from the first message the sink accepted to the last; total is the wall
time of the run process(es). Peak memory is sampled every 0.5 s over each run process and its
children: `peak_rss_mib` is the peak of their summed PSS (a forked pool's shared
pages counted once), and the largest single process's RSS is printed beside it.

Last line: `RESULT subscribers=N papers=M seconds=S per_s=R peak_rss_mib=X cpu_s=C
sink_cpu_s=K main_cpu_s=P` (CPU-seconds of the run processes with their build workers,
of the sink beside them, and of the run processes alone, i.e. sending, claims and the
outbox's writes: on a shared machine wall time is noisy, CPU-seconds much less), with
`workers=W speedup=Z` added when W > 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness import Sink, TreeMemory, digest_command, digest_env  # noqa: E402
from bench.workload import (  # noqa: E402
    CardReuse,
    load_corpus,
    make_papers,
    make_profiles,
    vocabulary,
)
from digest import store  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.records import PaperRecord  # noqa: E402

TIMEZONES = ["UTC"] * 6 + ["Europe/Berlin", "America/New_York", "Asia/Shanghai", "Asia/Kolkata"]
NOT_BUILT = {"building"}  # a claim in progress (PostgreSQL workers), not a digest yet


class LogWatch:
    """A run's stderr, read as it grows, for its `run.built` event: building is over
    (sending may go on)."""

    def __init__(self, path: str) -> None:
        # a handle of its own: the run writes through one that shares its offset
        self.file = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
        self.tail, self.seen = "", False

    def built(self) -> bool:
        if not self.seen:
            text = self.tail + self.file.read()  # from where the last read ended
            self.seen = "run.built" in text
            self.tail = text[-16:]  # an event name cut in two by a read
        return self.seen


# ---------------------------------------------------------------- databases


def fresh_database(args: argparse.Namespace, folder: Path, name: str, pg: Any) -> str:
    """A new, empty database for one measured run."""
    if pg is not None:
        url: str = pg.create_database(name)
        return url
    if args.database_url:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        base = make_url(args.database_url)
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return base.set(database=name).render_as_string(hide_password=False)
    return f"sqlite:///{folder / f'{name}.db'}"


def as_record(paper: Paper) -> PaperRecord:
    """A generated paper as a source would hand it to the store."""
    names = {f.name for f in fields(PaperRecord)} - {"source", "update_only"}
    return PaperRecord(source="bench", **{n: getattr(paper, n) for n in names})


def populate(url: str, args: argparse.Namespace, corpus: list[dict[str, Any]]) -> float:
    """Papers through the store's merge (what `digest fetch` does), subscribers through
    its bulk insert; seconds taken."""
    started = time.perf_counter()
    engine = store.make_engine(url)
    papers = make_papers(corpus, args.papers, args.seed)
    store.merge_papers(engine, [as_record(p) for p in papers])
    vocab = vocabulary(corpus)
    specs = make_profiles(corpus, args.subscribers, args.seed, vocab)
    tz = iter(TIMEZONES * (args.subscribers // len(TIMEZONES) + 1))
    store.add_subscribers(
        engine,
        (
            {
                "email": s.email,
                "keywords": s.keywords,
                "max_papers": s.max_papers,
                "min_score": s.min_score,
                "timezone": next(tz),
            }
            for s in specs
        ),
    )
    engine.dispose()
    return time.perf_counter() - started


# ---------------------------------------------------------------- one run


@dataclass
class Measured:
    processes: int
    total: float = 0.0
    build: float | None = None
    first_sent: float | None = None
    last_sent: float | None = None
    sink_accepted: int = 0
    cpu: float = 0.0
    # Of `cpu`, what the `digest run` processes spent themselves (sending, claiming,
    # the outbox's writes), the rest being their build workers': last seen while
    # they ran, so short by at most one poll (50 ms) each.
    main_cpu: float = 0.0
    sink_cpu: float = 0.0  # the sink's own CPU while the run lasted (same two cores)
    own_cpu: float = 0.0  # this benchmark's polling and sampling while the run lasted
    each_rss_mib: list[float] = field(default_factory=list)
    peak_pss_mib: float = 0.0
    largest_rss_mib: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    reports: list[dict[str, Any]] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def send(self) -> float:
        if self.first_sent is None or self.last_sent is None:
            return 0.0
        return self.last_sent - self.first_sent


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_supports_json(env: dict[str, str]) -> bool:
    done = digest_command(env, "run", "--help")
    return "--json" in done.stdout


def run_edition(url: str, sink: Sink, processes: int, expected: int, connections: int) -> Measured:
    """Start `processes` runs at once; poll the sink and the runs' logs until all
    exit; then read what they left. (Counting the outbox instead, ~0.1 CPU-s at
    100,000 rows, took the run's cores.)"""
    env = digest_env(url, sink.port, DIGEST_SMTP_POOL_SIZE=str(connections))
    args = ["run", "--now", "--no-fetch"] + (["--json"] if run_supports_json(env) else [])
    engine = store.make_engine(url)
    before = sink.messages()
    sink_cpu_before = process_cpu(sink.proc.pid if sink.proc else 0)
    m = Measured(processes)
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-run-"))
    outs = [(folder / f"{i}.out").open("w+") for i in range(processes)]
    errs = [(folder / f"{i}.err").open("w+") for i in range(processes)]
    own_before = time.process_time()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "digest", *args], env=env, stdout=o, stderr=e, text=True
        )
        for o, e in zip(outs, errs, strict=True)
    ]
    watchers = [TreeMemory(p.pid) for p in procs]
    last_count = before
    watches = [LogWatch(e.name) for e in errs]
    running = {p.pid: p for p in procs}
    own: dict[int, float] = {}
    while running:
        for pid, p in list(running.items()):
            own[pid] = process_cpu(pid) or own.get(pid, 0.0)
            # wait4: the exit status with the CPU and peak RSS of the process and of
            # every descendant it waited for (its build workers).
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                p.returncode = os.waitstatus_to_exitcode(status)
                m.cpu += usage.ru_utime + usage.ru_stime
                m.largest_rss_mib = max(m.largest_rss_mib, usage.ru_maxrss / 1024)
                del running[pid]
        now = time.perf_counter() - started
        count = sink.messages()
        if count > last_count:
            if m.first_sent is None:
                m.first_sent = now
            m.last_sent, last_count = now, count
        if m.build is None and all(w.built() for w in watches):
            m.build = now
        time.sleep(0.05)
    m.total = time.perf_counter() - started
    m.main_cpu = sum(own.values())
    m.own_cpu = time.process_time() - own_before
    m.sink_cpu = process_cpu(sink.proc.pid if sink.proc else 0) - sink_cpu_before
    for w in watchers:
        w.stop()
    for lw in watches:
        lw.file.close()
    m.exit_codes = [p.returncode for p in procs]
    m.peak_pss_mib = sum(w.peak_pss_kib for w in watchers) / 1024
    m.each_rss_mib = sorted(
        (kib / 1024 for w in watchers for kib in w.by_process.values()), reverse=True
    )
    m.largest_rss_mib = max(m.largest_rss_mib, *(w.peak_rss_kib / 1024 for w in watchers))
    for o, e in zip(outs, errs, strict=True):
        o.seek(0)
        e.seek(0)
        text, m.stderr = o.read(), [*m.stderr, e.read()[-1500:]]
        if "--json" in args:
            with contextlib.suppress(json.JSONDecodeError):
                m.reports.append(json.loads(text))
        o.close()
        e.close()
    for e in store.edition_summary(engine):
        m.statuses.update(e["statuses"])
    engine.dispose()
    # The sink counts a message once it answered its "."; the client may have moved on.
    sent = m.statuses.get("sent", 0)
    m.sink_accepted = sink.wait_for(before + sent, timeout=10) - before
    if m.sink_accepted > last_count - before:
        m.last_sent = time.perf_counter() - started
    if m.build is None:
        m.build = m.total
    return m


def card_reuse_of(url: str) -> tuple[CardReuse, CardReuse]:
    """From the digests written: card uses against distinct papers (rendered once per
    paper) and against distinct (paper, highlighted terms, reason) cards (what a
    per-card cache can reuse)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    uses = 0
    papers: set[str] = set()
    cards: set[tuple[str, tuple[str, ...], str]] = set()
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=2000).execute(
            text("SELECT paper_ids, explanations FROM digest WHERE status = 'sent'")
        )
        for paper_ids, explanations in rows:
            ids = json.loads(paper_ids) if isinstance(paper_ids, str) else paper_ids
            why = json.loads(explanations) if isinstance(explanations, str) else explanations
            uses += len(ids)
            papers.update(ids)
            for pid in ids:
                e = why.get(pid) or {}
                terms = tuple(dict.fromkeys(h["term"] for h in e.get("hits", [])))
                cards.add((pid, terms, e.get("why", "")))
    engine.dispose()
    return CardReuse(uses, len(papers)), CardReuse(uses, len(cards))


# ---------------------------------------------------------------- report


def describe(m: Measured, subscribers: int) -> None:
    w = "process" if m.processes == 1 else "processes"
    first = f"{m.first_sent:.1f}" if m.first_sent is not None else "-"
    print(
        f"  {m.processes} {w}: build {m.build:.1f} s, send {m.send:.1f} s (first message "
        f"at {first} s), total {m.total:.1f} s = {subscribers / m.total:,.0f} digests/s"
    )
    print(
        f"  cpu: {m.cpu:.1f} s (user + sys of the run processes and their workers) = "
        f"{subscribers / m.cpu:,.0f} digests per CPU second, {m.cpu / m.total:.2f} cores busy; "
        f"load average {os.getloadavg()[0]:.1f} (2 cores: more is a shared, noisy machine); "
        f"of which the run {w} {m.main_cpu:.1f} s (sending, claims, outbox writes), "
        f"build workers {m.cpu - m.main_cpu:.1f} s"
    )
    print(
        f"  sink: {m.sink_cpu:.1f} CPU-s on the same cores while the run lasted "
        f"({m.sink_cpu / m.total:.2f} cores), not counted above; this benchmark's own "
        f"polling and sampling: {m.own_cpu:.1f} CPU-s"
    )
    print(
        f"  memory: peak {m.peak_pss_mib:,.0f} MiB (PSS of the run processes and their "
        f"children), largest process {m.largest_rss_mib:,.0f} MiB RSS; each process's "
        f"peak RSS: {', '.join(f'{r:,.0f}' for r in m.each_rss_mib[:6])} MiB"
    )
    print(f"  outbox: {dict(sorted(m.statuses.items()))}; sink accepted {m.sink_accepted:,}")
    if m.reports:
        keys = ("built", "empty", "already", "nothing_new", "failed", "sent")
        totals = {k: sum(int(r.get(k, 0) or 0) for r in m.reports) for k in keys}
        print(f"  run --json reports, added up: {totals}")


def check(m: Measured, subscribers: int) -> list[str]:
    """What would make the figures meaningless: a failed run, a digest not built,
    one not accepted by the sink."""
    problems = []
    if any(m.exit_codes):
        problems.append(f"exit codes {m.exit_codes}: {' | '.join(s for s in m.stderr if s)}")
    done = sum(n for s, n in m.statuses.items() if s not in NOT_BUILT)
    if done != subscribers:
        problems.append(f"{done} digest rows for {subscribers} subscribers")
    left = {s: n for s, n in m.statuses.items() if s not in ("sent", "empty")}
    if left:
        problems.append(f"digests not sent: {left}")
    if m.sink_accepted != m.statuses.get("sent", 0):
        problems.append(
            f"the sink accepted {m.sink_accepted} messages, the outbox says "
            f"{m.statuses.get('sent', 0)} were sent"
        )
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1, help="digest run processes at once")
    ap.add_argument("--database-url", default="", help="a PostgreSQL server (CREATEDB)")
    ap.add_argument("--postgres", action="store_true", help="start a throw-away PostgreSQL")
    ap.add_argument("--sink", choices=("auto", "postfix", "aiosmtpd"), default="auto")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--smtp-connections",
        type=int,
        default=16,
        help="DIGEST_SMTP_POOL_SIZE of each run (the sizing guide's advice for a local relay)",
    )
    ap.add_argument("--corpus", type=Path, default=None, help="seed_papers*.jsonl")
    ap.add_argument(
        "--keep", action="store_true", help="keep the SQLite files (to rerun or profile a run)"
    )
    args = ap.parse_args()
    if args.workers < 1 or args.subscribers < 1 or args.papers < 1:
        raise SystemExit("--workers, --subscribers and --papers must be at least 1")
    if args.workers > 1 and not (args.database_url or args.postgres):
        print("note: several workers on one SQLite file share one writer", file=sys.stderr)
    corpus = load_corpus(args.corpus)
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-edition-"))
    pg = None
    if args.postgres:
        sys.path.insert(0, str(REPO / "tests"))
        from postgres_server import PostgresServer, find_bin

        bindir = find_bin()
        if bindir is None:
            raise SystemExit("--postgres: no PostgreSQL server binaries (pg_ctl) found")
        pg = PostgresServer(bindir)
        pg.start()
    try:
        with Sink(args.sink, folder) as sink:
            kind = "PostgreSQL" if (pg or args.database_url) else "SQLite file"
            print(
                f"{args.subscribers:,} subscribers x {args.papers:,} papers, {kind}, "
                f"sink: {sink.name}, {args.smtp_connections} SMTP connections per process"
            )
            counts = [1, args.workers] if args.workers > 1 else [1]
            results = []
            for n in counts:
                url = fresh_database(args, folder, f"digest_bench_w{n}", pg)
                digest_command(digest_env(url, sink.port), "init")
                took = populate(url, args, corpus)
                print(f"populated in {took:.1f} s; run with {n} process(es):")
                m = run_edition(url, sink, n, args.subscribers, args.smtp_connections)
                describe(m, args.subscribers)
                problems = check(m, args.subscribers)
                if problems:
                    raise SystemExit("FAILED: " + "; ".join(problems))
                per_paper, per_card = card_reuse_of(url)
                print(f"  cards rendered once per paper: {per_paper.describe()}")
                print(f"  cards cached per highlight and reason: {per_card.describe()}")
                results.append(m)
    finally:
        if pg is not None:
            pg.stop()
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    last = results[-1]
    line = (
        f"RESULT subscribers={args.subscribers} papers={args.papers} seconds={last.total:.1f} "
        f"per_s={args.subscribers / last.total:.0f} peak_rss_mib={last.peak_pss_mib:.0f}"
        f" cpu_s={last.cpu:.1f} sink_cpu_s={last.sink_cpu:.1f} main_cpu_s={last.main_cpu:.1f}"
    )
    if len(results) > 1:
        line += f" workers={args.workers} speedup={results[0].total / last.total:.2f}"
    print(line)


if __name__ == "__main__":
    main()
