"""How fast the outbox delivers, against a bare aiosmtplib loop measured in the same
run over the same number of connections to the same SMTP sink and the same messages.

The outbox path is the real one: N rendered rows in a SQLite outbox, claimed with
leases, sent through the SMTP pool, results written back in batches. The sink runs in
another process on loopback: Postfix's `smtp-sink` when it is installed (and we are
root, as it wants to drop privileges), else aiosmtpd in a child Python process.

The messages are real digests by default (`--kind edition`): a few hundred subscribers
from bench/workload.py matched against 1,000 papers and rendered by the real renderer
(HTML with inlined styles plus text, quoted-printable; tens of kB each, like an
edition's), cycled over the N rows. `--kind synthetic --size BYTES` is the older
uniform message, kept for comparison.

CPU per message is this process's CPU time (the sends and the database thread) over
the messages: a figure a busy machine disturbs far less than the rate.

    .venv/bin/python bench/send.py [--messages N] [--connections C] [--kind edition|synthetic]
                                   [--distinct K] [--size BYTES] [--sink auto|postfix|aiosmtpd]

Last line: `RESULT messages=N outbox_per_s=X bare_per_s=Y ratio=Z peak_rss_mib=M
cpu_us_per_message=C bare_cpu_us_per_message=B cpu_ratio=R mean_kb=K`.
Run it with N=1000 and N=50000 to see that memory stays flat (rows are claimed and
written in batches; never all messages at once).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, insert, select, update

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))  # bench/render.py imports its neighbours by name

from bench.harness import SENDER, Sink  # noqa: E402
from digest import store  # noqa: E402
from digest.config import load_settings  # noqa: E402
from digest.delivery.sender import send_due  # noqa: E402
from digest.delivery.smtp import SmtpTransport  # noqa: E402
from digest.models import Digest, DigestMessage, Subscriber, utcnow  # noqa: E402


def message_template(size: int) -> bytes:
    """A digest-sized multipart message (text + HTML) with RCPT/NUM placeholders."""
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = "RCPT"
    msg["Subject"] = "12 new papers: diffusion, agents - 25 Nov (NUM)"
    msg["Message-ID"] = "<bench.NUM@digest.example.org>"
    msg["List-Unsubscribe"] = "<https://digest.example.org/unsubscribe/NUM>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    line = "A paper about diffusion models and agents, with an abstract of some length. "
    text = (line * (size // 2 // len(line) + 1))[: size // 2]
    msg.set_content(text)
    msg.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
    return msg.as_bytes()


def make_message(template: bytes, recipient: str, n: int) -> bytes:
    """Both paths send bytes made ahead (the outbox stores rendered messages), so the
    per-message cost here is a cheap substitution, not MIME building."""
    return template.replace(b"RCPT", recipient.encode()).replace(b"NUM", str(n).encode())


def edition_messages(distinct: int, papers: int, seed: int) -> list[bytes]:
    """`distinct` real digests of one edition, as `digest run` stores them: realistic
    profiles matched by the real matcher, rendered and built by the real renderer."""
    from render import realistic_digests  # bench/render.py

    from digest.config import Settings
    from digest.rendering import build_message, make_environment, render_digest

    settings = Settings(
        base_url="https://digest.example.org", secret_key="bench-secret", from_address=SENDER
    )
    digests, _ = realistic_digests(distinct, papers, seed)
    env = make_environment(settings)
    edition = date(2026, 11, 24)
    out = []
    for i, (addr, items) in enumerate(digests):
        rendered = render_digest(
            env, settings, addr, items, edition, f"{i}:{edition}", "bench", token_version=0
        )
        out.append(build_message(settings, addr, rendered).as_bytes())
    return out


class Messages:
    """The message of row `n`: a substituted template, or the n-th edition digest."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.pool: list[bytes] = []
        self.template = b""
        if args.kind == "edition":
            self.pool = edition_messages(args.distinct, args.papers, args.seed)
        else:
            self.template = message_template(args.size)

    def __call__(self, recipient: str, n: int) -> bytes:
        if self.pool:
            return self.pool[n % len(self.pool)]
        return make_message(self.template, recipient, n)

    def mean_bytes(self, n: int) -> float:
        return sum(len(self(f"reader{i}@example.net", i)) for i in range(n)) / max(n, 1)


def recipients(n: int) -> Iterator[tuple[int, str]]:
    for i in range(n):
        yield i, f"reader{i}@example.net"


def fill_outbox(engine, n: int, messages: Messages) -> None:
    """N subscribers and N pending rows with their messages, written in chunks (memory
    stays flat)."""
    now = utcnow()
    chunk = 1000
    with engine.begin() as conn:
        for start in range(0, n, chunk):
            ids = range(start, min(n, start + chunk))
            conn.execute(
                insert(Subscriber.__table__),
                [
                    Subscriber(id=i + 1, email=f"reader{i}@example.net", keywords="x").model_dump()
                    for i in ids
                ],
            )
            conn.execute(
                insert(Digest.__table__),
                [
                    Digest(
                        id=i + 1,
                        subscriber_id=i + 1,
                        edition="2026-11-25",
                        recipient=f"reader{i}@example.net",
                        message_id=f"<bench.{i}@digest.example.org>",
                        created_at=now,
                    ).model_dump()
                    for i in ids
                ],
            )
            conn.execute(
                insert(DigestMessage.__table__),
                [
                    {
                        "digest_id": i + 1,
                        "message": messages(f"reader{i}@example.net", i),
                    }
                    for i in ids
                ],
            )


async def bare_loop(port: int, n: int, connections: int, messages: Messages) -> float:
    """The baseline: C connections, each sending its share in a plain loop."""
    work = iter(recipients(n))

    async def one_connection() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await client.connect()
        for i, rcpt in work:
            message = messages(rcpt, i)
            await client.sendmail("digest@example.org", [rcpt], message)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return n / (time.perf_counter() - started)


def timed_bare(port: int, n: int, connections: int, messages: Messages) -> tuple[float, float]:
    """(messages/s, CPU microseconds per message) of one bare round."""
    cpu = time.process_time()
    rate = asyncio.run(bare_loop(port, n, connections, messages))
    return rate, (time.process_time() - cpu) / n * 1e6


class OutboxBench:
    """A SQLite outbox filled once; each round puts every row back to pending."""

    def __init__(
        self, port: int, n: int, connections: int, messages: Messages, folder: Path
    ) -> None:
        self.n = n
        self.cpu_us: list[float] = []
        self.settings = replace(
            load_settings(environ={}, env_file=None),
            database_url=f"sqlite:///{folder / 'bench.db'}",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            smtp_pool_size=connections,
            smtp_timeout=30,
            from_address=SENDER,
            breaker_threshold=1000,
        )
        # Made as an operator makes it, with `digest init` in its own process: the
        # measured process then opens an initialised database as `digest run` does,
        # and never loads the migration machinery (Alembic) into its memory.
        subprocess.run(
            [sys.executable, "-m", "digest", "init"],
            env={
                **os.environ,
                "DIGEST_DATABASE_URL": self.settings.database_url,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
                ),
            },
            stdout=subprocess.DEVNULL,
            check=True,
        )
        self.engine = store.make_engine(self.settings.database_url)
        store.ensure_schema(self.engine)
        fill_outbox(self.engine, n, messages)

    def run(self) -> float:
        table = Digest.__table__
        with self.engine.begin() as conn:
            conn.execute(
                update(table).values(status="pending", attempts=0, sent_at=None, smtp_reply=None)
            )
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        started, cpu = time.perf_counter(), time.process_time()
        report = asyncio.run(send_due(self.engine, self.settings, SmtpTransport(self.settings)))
        elapsed = time.perf_counter() - started
        # CPU of this process (the sends and the database thread): a figure that a
        # busy machine disturbs far less than the rate.
        self.cpu_us.append((time.process_time() - cpu) / self.n * 1e6)
        with self.engine.connect() as conn:
            sent = conn.execute(
                select(func.count()).select_from(table).where(table.c.status == "sent")
            ).scalar_one()
        if report.sent != self.n or sent != self.n:
            raise SystemExit(
                f"outbox sent {report.sent} (recorded {sent}) of {self.n}: {report.errors[:3]}"
            )
        return self.n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--kind", choices=("edition", "synthetic"), default="edition")
    parser.add_argument("--distinct", type=int, default=300, help="edition digests rendered")
    parser.add_argument("--papers", type=int, default=1000, help="papers of the edition")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", type=int, default=4000, help="synthetic message bytes")
    parser.add_argument("--sink", choices=("auto", "postfix", "aiosmtpd"), default="auto")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; the best of each counts"
    )
    args = parser.parse_args()
    messages = Messages(args)
    mean_kb = messages.mean_bytes(min(args.messages, len(messages.pool) or 100)) / 1000
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-send-"))
    sink = Sink(args.sink, folder).__enter__()
    port = sink.port
    try:
        print(
            f"sink: {sink.name} on 127.0.0.1:{port}; {args.connections} connections; "
            f"{args.kind} messages, mean {mean_kb:.1f} kB"
            + (f" ({len(messages.pool)} distinct digests)" if messages.pool else "")
        )
        bench = OutboxBench(port, args.messages, args.connections, messages, folder)
        # A short warm-up, then alternating rounds: a noisy neighbour on the machine
        # hurts whichever path runs at that moment, and the best round of each is the
        # closest to what the path can do.
        timed_bare(port, min(500, args.messages), args.connections, messages)
        bares: list[tuple[float, float]] = []
        outboxes: list[float] = []
        for r in range(args.rounds):
            order = ("bare", "outbox") if r % 2 == 0 else ("outbox", "bare")
            for which in order:
                if which == "bare":
                    bares.append(timed_bare(port, args.messages, args.connections, messages))
                else:
                    outboxes.append(bench.run())
            print(
                f"round {r + 1}: bare aiosmtplib loop {bares[-1][0]:,.0f}/s "
                f"({bares[-1][1]:.0f} us CPU/message), outbox (claim, send, record) "
                f"{outboxes[-1]:,.0f}/s ({bench.cpu_us[-1]:.0f} us CPU/message)"
            )
        bench.engine.dispose()
        bare, outbox = max(b[0] for b in bares), max(outboxes)
        bare_cpu, cpu = min(b[1] for b in bares), min(bench.cpu_us)
    finally:
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()[0]
    print(
        f"outbox CPU per message: {cpu:.0f} us, bare aiosmtplib loop: {bare_cpu:.0f} us "
        f"(best rounds); load average {load:.1f} (2 cores: more is a busy machine)"
    )
    print(
        f"RESULT messages={args.messages} outbox_per_s={outbox:.0f} bare_per_s={bare:.0f} "
        f"ratio={outbox / bare:.2f} peak_rss_mib={peak:.0f} cpu_us_per_message={cpu:.0f} "
        f"bare_cpu_us_per_message={bare_cpu:.0f} cpu_ratio={cpu / bare_cpu:.2f} "
        f"mean_kb={mean_kb:.1f} kind={args.kind}"
    )


if __name__ == "__main__":
    main()
