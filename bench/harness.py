"""What the benchmarks share: an SMTP sink in another process that counts what it
accepted, `digest` commands run as an operator runs them (their own process, the
environment as settings), and the memory of a process tree measured while it runs.

The sink is Postfix's `smtp-sink` when it is installed (and we are root, as it wants
to drop privileges), else aiosmtpd in a child Python process. Either writes its
running counters (`sess=N quit=N mesg=N`, Postfix's `-c` format) to a file, so a
benchmark can check that every message it meant to send was accepted.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
SENDER = "Paper Digest <digest@example.org>"

# The aiosmtpd fallback, in its own process like the Postfix sink: it counts the
# messages it accepted and writes the count in smtp-sink's `-c` format.
AIOSMTPD_SINK = """
import sys, threading
from aiosmtpd.controller import Controller
out = open(sys.argv[2], "w")
lock = threading.Lock()
count = 0
class Discard:
    async def handle_DATA(self, server, session, envelope):
        global count
        with lock:
            count += 1
            out.write(f"sess=0 quit=0 mesg={count}\\r")
            out.flush()
        return "250 2.0.0 Ok: queued"
c = Controller(Discard(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
"""

_COUNTERS = re.compile(rb"mesg=(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Sink:
    """An SMTP server on loopback, in another process, that accepts and discards every
    message and counts them. Use as a context manager; `messages()` is the count."""

    def __init__(self, kind: str = "auto", folder: Path | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.folder = folder or Path(os.environ.get("TMPDIR", "/tmp"))
        self.counters = self.folder / f"sink-{self.port}.counters"
        self.proc: subprocess.Popen[bytes] | None = None
        self.name = ""

    def __enter__(self) -> Sink:
        smtp_sink = shutil.which("smtp-sink") or (
            "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
        )
        out = self.counters.open("wb")
        if self.kind in ("auto", "postfix") and smtp_sink and os.geteuid() == 0:
            # -c: running counters on stdout; 256: the listen backlog.
            self.proc = subprocess.Popen(
                [smtp_sink, "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "256"],
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
            self.name = "postfix smtp-sink"
        elif self.kind == "postfix":
            raise SystemExit("postfix smtp-sink is not available (needs the postfix package, root)")
        else:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", AIOSMTPD_SINK, str(self.port), str(self.counters)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert self.proc.stdout is not None
            self.proc.stdout.readline()
            self.name = "aiosmtpd (child process)"
        out.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise SystemExit(f"the sink ({self.name}) did not start") from None
                time.sleep(0.05)

    def messages(self) -> int:
        """How many messages the sink has accepted so far (the last counters line)."""
        try:
            with self.counters.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 200))
                tail = f.read()
        except FileNotFoundError:
            return 0
        found = _COUNTERS.findall(tail)
        return int(found[-1]) if found else 0

    def wait_for(self, count: int, timeout: float) -> int:
        """Poll until the sink counted `count` messages or `timeout` passed; the count.
        Postfix writes its counter when a message's "." is answered, so the last
        message can land a moment after the client saw its reply."""
        deadline = time.monotonic() + timeout
        while (got := self.messages()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return got

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.counters.unlink(missing_ok=True)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def digest_env(database_url: str, sink_port: int, **extra: str) -> dict[str, str]:
    """The environment a `digest` command gets: this checkout on the path, no stray
    DIGEST_* of the caller's, the database and the sink as settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "DIGEST_DATABASE_URL": database_url,
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(sink_port),
            "DIGEST_SMTP_SECURITY": "none",
            "DIGEST_FROM": SENDER,
            "DIGEST_BASE_URL": "https://digest.example.org",
            "DIGEST_SECRET_KEY": "bench-secret-key-bench-secret-key-0123456789",
            "DIGEST_SOURCES": "sample",
            **extra,
        }
    )
    return env


def digest_command(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m digest ARGS` to completion; stop the benchmark if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "digest", *args],
        env=dict(env),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"digest {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return done


# ---------------------------------------------------------------- memory


def _tree(root: int) -> list[int]:
    """`root` and every process under it (a process pool's workers too)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _rollup(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of /proc/PID/smaps_rollup in KiB ((0, 0) once the process is gone).
    One read gives both: the kernel walks the whole address space for each read
    (several ms for a 300 MiB build worker), and reading it twice per process every
    0.1 s took ~0.2 of this machine's two cores from the run being measured."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pss, rss


class TreeMemory:
    """Samples the memory of a process and its children every `every` seconds in a
    thread (twice a second: an edition's memory moves over seconds, and a sample
    costs the measured run's cores tens of ms): the peak of their summed PSS (shared pages counted once, so forked
    workers are not counted twice) and the peak RSS of the largest single process."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid = pid
        self.every = every
        self.peak_pss_kib = 0
        self.peak_rss_kib = 0
        self.processes = 1
        self.by_process: dict[int, int] = {}  # pid -> its peak RSS in KiB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.pid)
            self.processes = max(self.processes, len(pids))
            sizes = {p: _rollup(p) for p in pids}
            self.peak_pss_kib = max(self.peak_pss_kib, sum(pss for pss, _ in sizes.values()))
            for p, (_, rss) in sizes.items():
                self.by_process[p] = max(self.by_process.get(p, 0), rss)
                self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
