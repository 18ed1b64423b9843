"""The live-preview attack of issue 16: does one client hammering `POST /api/preview`
stall everyone else?

Starts the real web app (`digest web` in a subprocess on a free loopback port) over a
real SQLite database holding 1,000 papers (the seed corpus at
../shared/corpus/seed_papers.jsonl when present, else the bundled sample, repeated
with distinct ids). An attacker process keeps 64 preview requests in flight for
20 s; meanwhile this process measures `/healthz` and the sign-up form (a CSRF token
from `GET /`, then `POST /subscribe` with a new address each time).

    .venv/bin/python bench/preview_attack.py [--seconds 20] [--connections 64]

Last line: `RESULT healthz_p99_ms=X signup_p99_ms=Y preview_rejected=Z`
(the target is both p99 under 1,000 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "corpus" / "seed_papers.jsonl"
SAMPLE = REPO / "digest" / "data" / "sample_papers.jsonl"
PAPERS = 1000
REQUEST_TIMEOUT = 60.0
QUERIES = [
    "diffusion",
    '"reinforcement learning" AND robot*',
    "language model*, agent*, planning",
    "transformer OR attention -vision",
    '"large language model" AND (reasoning OR math*)',
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_papers(path: Path) -> str:
    """1,000 papers as JSON Lines, with distinct ids; returns where they came from."""
    source = SEED if SEED.exists() else SAMPLE
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    with path.open("w") as out:
        for i in range(PAPERS):
            row = rows[i % len(rows)]
            paper = {
                "id": f"bench:{i:05d}",
                "title": row["title"] + ("" if i < len(rows) else f" (part {i // len(rows)})"),
                "abstract": row.get("abstract") or "",
            }
            out.write(json.dumps(paper) + "\n")
    return source.name


def digest_env(workdir: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO),
        DIGEST_DATABASE_URL=f"sqlite:///{workdir / 'digest.db'}",
        DIGEST_SOURCES=f"file:{workdir / 'papers.jsonl'}",
        DIGEST_TRANSPORT="file",
        DIGEST_OUTBOX_DIR=str(workdir / "outbox"),
        DIGEST_BASE_URL=f"http://127.0.0.1:{port}",
        DIGEST_SIGNUP_LIMIT_PER_IP="1000000",
        DIGEST_LOG_LEVEL="error",
    )
    return env


def digest(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "digest", *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )


def wait_ready(base: str, proc: subprocess.Popen[bytes], deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"digest web exited with {proc.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # polling a starting server, with a deadline
    raise SystemExit("digest web did not answer /healthz within 60 s")


# ---------------------------------------------------------------- the attacker


async def attack(base: str, seconds: float, connections: int) -> dict[str, int]:
    """`connections` previews in flight until the time is up; counts of each status."""
    counts: Counter[str] = Counter()
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT) as client:

        async def worker(n: int) -> None:
            i = n
            while time.monotonic() < stop:
                body = {"keywords": QUERIES[i % len(QUERIES)], "max_papers": 20}
                i += connections
                try:
                    answer = await client.post("/api/preview", json=body)
                    counts[str(answer.status_code)] += 1
                except httpx.HTTPError as exc:
                    counts[type(exc).__name__] += 1

        await asyncio.gather(*(worker(n) for n in range(connections)))
    return dict(counts)


# ---------------------------------------------------------------- the measurer


def p99(samples: list[float]) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def measure(base: str, attacker: subprocess.Popen[bytes], pace: float) -> dict[str, object]:
    """Sequential /healthz and sign-ups until the attacker ends (ms per request)."""
    health: list[float] = []
    signups: list[float] = []
    failures: Counter[str] = Counter()
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as client:
        page = client.get("/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        if token is None:
            raise SystemExit("no CSRF token on the sign-up page")
        n = 0
        while attacker.poll() is None:
            n += 1
            started = time.perf_counter()
            try:
                answer = client.get("/healthz")
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            health.append((time.perf_counter() - started) * 1000)
            failures["healthz"] += not ok
            started = time.perf_counter()
            form = {"csrf_token": token.group(1), "email": f"bench-{n}@example.org"}
            form["keywords"] = "diffusion"
            try:
                answer = client.post("/subscribe", data=form, follow_redirects=False)
                ok = answer.status_code == 303
            except httpx.HTTPError:
                ok = False
            signups.append((time.perf_counter() - started) * 1000)
            failures["signup"] += not ok
            time.sleep(pace)  # a steady trickle of visitors, not a second attack
    return {"healthz": health, "signup": signups, "failures": dict(failures)}


def summary(name: str, samples: list[float]) -> str:
    if not samples:
        return f"{name}: no samples"
    ordered = sorted(samples)
    median = ordered[len(ordered) // 2]
    return (
        f"{name}: n={len(samples)} median={median:.0f} ms p99={p99(samples):.0f} ms "
        f"max={ordered[-1]:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between probes")
    parser.add_argument("--attacker", metavar="BASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attacker:  # the child process: attack, print the counts as JSON
        print(json.dumps(asyncio.run(attack(args.attacker, args.seconds, args.connections))))
        return

    with tempfile.TemporaryDirectory(prefix="digest-preview-attack-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = digest_env(workdir, port)
        origin = write_papers(workdir / "papers.jsonl")
        digest(env, "init")
        digest(env, "fetch")
        web = subprocess.Popen(
            [sys.executable, "-m", "digest", "web", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_ready(base, web)
            print(f"{PAPERS} papers from {origin}; attacking with {args.connections} connections")
            print(f"for {args.seconds:.0f} s while probing /healthz and sign-up")
            attacker = subprocess.Popen(
                [sys.executable, __file__, "--attacker", base, "--seconds", str(args.seconds)]
                + ["--connections", str(args.connections)],
                stdout=subprocess.PIPE,
            )
            seen = measure(base, attacker, args.pace)
            out, _ = attacker.communicate(timeout=REQUEST_TIMEOUT * 2)
            counts = json.loads(out.decode().strip().splitlines()[-1])
        finally:
            web.terminate()
            try:
                web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                web.kill()
                web.wait()
    health, signups = seen["healthz"], seen["signup"]
    assert isinstance(health, list) and isinstance(signups, list)
    print(summary("healthz", health))
    print(summary("sign-up", signups))
    print(f"failed probes: {seen['failures']}")
    print(f"preview answers: {counts}")
    rejected = counts.get("429", 0) + counts.get("503", 0)
    print(
        f"RESULT healthz_p99_ms={p99(health):.0f} signup_p99_ms={p99(signups):.0f} "
        f"preview_rejected={rejected}"
    )


if __name__ == "__main__":
    main()
