"""Build workers forked from one warm process, so that replacing a worker is cheap.

A build worker is replaced after a bounded number of chunks (for flat memory, see
`digest.pipeline.pool`). Started with `spawn`, every replacement paid again for a
fresh interpreter, its imports, the templates, the papers' index and what its first
chunk learns per paper (each card's state): ~1.8 CPU-seconds, its first chunk ~4x
the cost of the next. Here one process (the *zygote*) is spawned per edition: it
imports everything, indexes the edition's papers, compiles the templates, builds the
edition's first chunk itself (one worker, forked at once, builds the next ones
meanwhile), freezes what it learnt out of the cyclic collector, and from then on only
forks workers, a new one whenever one ends (a fork takes milliseconds; the workers
share the zygote's pages until they write them, so memory is lower too).

The zygote is single-threaded (forking is safe there, unlike in the `digest run`
process with its sender thread). Chunks go out on one task queue that every worker
reads; results come back on one pipe that a thread of the owner reads, setting the
futures the owner waits on. A worker that dies (killed, out of memory) breaks the
pool, as it breaks a ProcessPoolExecutor: every chunk in flight fails, the run says
so, and the claims are taken over by the next run.
The zygote ends when told to, or when its owner is gone (its end of the control pipe
closes); workers die with the zygote (Linux's parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import multiprocessing
import pickle
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from digest import store
from digest.pipeline.build import BuildReport, EditionBuilder, EditionPlan
from digest.store.claims import Claim

_SPAWN = multiprocessing.get_context("spawn")
_FORK = multiprocessing.get_context("fork")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class Tuning:
    """How the workers run: their count, chunks each builds before it is replaced,
    the cyclic collector's thresholds, and how freed memory goes back to the system."""

    workers: int
    chunks_per_worker: int
    gc_thresholds: tuple[int, int, int]
    release_memory: Callable[[], None]


class _Results:
    """Where a process says what became of a chunk: the results pipe every worker
    shares (under its lock), or the zygote's own control pipe (no lock: a worker killed
    while holding that lock must not silence the zygote, which reports the death)."""

    def __init__(self, conn: Connection, lock: Any = None) -> None:
        self.conn, self.lock = conn, lock

    def send(self, kind: str, key: int, value: Any) -> None:
        with self.lock if self.lock is not None else contextlib.nullcontext():
            self.conn.send((kind, key, value))


def _picklable(exc: BaseException) -> BaseException:
    """`exc` if it can travel between processes, else a RuntimeError naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


@functools.cache
def _prctl() -> Any:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


def _die_with_parent() -> None:
    """Linux: be killed when the parent ends, however it ends: a worker with its
    zygote, the zygote with the thread that started it (elsewhere, the zygote still
    ends when its control pipe closes, and its daemonic workers with it)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """While the zygote is started: a process started with SIGINT ignored keeps it
    ignored (Python turns SIGINT into KeyboardInterrupt only when it finds the
    default), so a Ctrl-C that reaches the process group while the zygote is still
    importing cannot kill it there (`_zygote` ignores it from then on). Only the main
    thread may change handlers; the scheduler's threads have no terminal anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def _warm(builder: EditionBuilder) -> None:
    """What every worker would otherwise do first: index the papers most digests of
    the edition start from (subscribers' first digests) and compile the templates (by
    rendering one empty digest, which is thrown away). The keyword index is built
    here, not by the first chunk: the first worker is forked before that chunk, and
    built a second index of its own (~0.6 CPU-s for 1,000 papers)."""
    builder.papers(builder.plan.first_seq).papers.index_for(builder.weights)
    builder.warm_renderer()


def _zygote(
    plan: EditionPlan, tuning: Tuning, tasks: Any, results: _Results, control: Connection
) -> None:
    _die_with_parent()  # even while it waits for its first chunk
    # Ctrl-C reaches the whole foreground process group: the owner (`digest run`)
    # decides what it means (claim nothing more, let the chunks in flight finish);
    # the zygote and the workers it forks go on building what they were given.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(*tuning.gc_thresholds)
    said = _Results(control)
    try:
        engine = store.make_engine(plan.settings.database_url)
        builder = EditionBuilder(plan, engine)
        _warm(builder)
        engine.dispose()  # a forked worker opens its own connections
    except Exception as exc:
        said.send("fatal", 0, _picklable(exc))
        return
    children: dict[int, multiprocessing.process.BaseProcess] = {}

    def start() -> None:
        child = _FORK.Process(
            target=_worker,
            args=(builder, tuning, tasks, results),
            name="digest-build-worker",
            daemon=True,
        )
        child.start()
        children[child.sentinel] = child

    # The first chunk is built here: what it teaches (every paper's card state, the
    # cards and lines it rendered) is then what each worker forked later starts with,
    # instead of every replacement learning it again (~1.3 CPU-s a worker). One worker
    # is forked at once to build the next chunks meanwhile. (Taken before that fork,
    # so that the None of an owner that had nothing to build reaches this process.)
    first = tasks.get()
    if first is not None:
        start()
        _build(builder, first, said)
        engine.dispose()
    gc.collect()
    tuning.release_memory()
    gc.freeze()  # shared with every worker: never walked, so never copied
    for _ in range(tuning.workers - 1 if first is not None else 0):
        start()
    stopping = first is None
    if stopping:
        for _ in children:
            tasks.put(None)
    while children:
        for ready in wait([control, *children]):
            if ready is control:
                try:
                    control.recv()
                except EOFError:  # the owner is gone: so are we, and the workers
                    for child in children.values():
                        child.kill()
                    return
                if not stopping:
                    stopping = True
                    for _ in children:
                        tasks.put(None)
                continue
            assert isinstance(ready, int)
            child = children.pop(ready)
            child.join()
            if child.exitcode != 0:
                # It may have died holding the task queue's lock (an idle worker waits
                # inside it): the others could wait forever, so this pool is broken.
                said.send("died", child.pid or 0, child.exitcode)
                for other in children.values():
                    other.kill()
                return
            if not stopping:
                start()
    said.send("closed", 0, None)


def _build(builder: EditionBuilder, task: tuple[int, list[Claim]], results: _Results) -> None:
    key, claims = task
    try:
        report = builder.build_claims(claims)
    except Exception as exc:
        results.send("error", key, _picklable(exc))
    else:
        results.send("done", key, report)


def _worker(builder: EditionBuilder, tuning: Tuning, tasks: Any, results: _Results) -> None:
    _die_with_parent()
    builder.engine.dispose(close=False)  # the zygote's connections are not ours
    for done in range(tuning.chunks_per_worker):
        task = tasks.get()
        if task is None:
            return
        _build(builder, task, results)
        if done == 0:  # what the first chunk cached lives as long as this worker
            gc.collect()
            gc.freeze()
        tuning.release_memory()


def _ended(exitcode: int) -> str:
    """How a worker ended, for an operator: a signal by name (the kernel's
    out-of-memory killer sends SIGKILL), else its exit code."""
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            name = signal.Signals(-exitcode).name
            hint = " (out of memory, or killed by hand?)" if name == "SIGKILL" else ""
            return f"was killed by {name}{hint}"
    return f"ended with exit code {exitcode}"


class ForkedWorkers:
    """Builds chunks in workers forked from a warm zygote (see the module docstring);
    `submit` answers with a future, like an executor's."""

    def __init__(self, plan: EditionPlan, tuning: Tuning) -> None:
        self.tasks = _SPAWN.SimpleQueue()
        reader, writer = _SPAWN.Pipe(duplex=False)
        self.control, control_r = _SPAWN.Pipe()  # stop, one way; the zygote's news, back
        self.results = reader
        # Kept here until the zygote has them: a lock is unlinked when collected.
        self.writer = _Results(writer, _SPAWN.Lock())
        self.zygote = _SPAWN.Process(
            target=_zygote,
            args=(plan, tuning, self.tasks, self.writer, control_r),
            name="digest-build-zygote",
        )
        with _sigint_ignored():
            self.zygote.start()
        writer.close()
        control_r.close()
        self.lock = threading.Lock()
        self.futures: dict[int, Future[BuildReport]] = {}
        self.broken: BaseException | None = None
        self.next_key = 0
        self.reader = threading.Thread(target=self._read, name="digest-build-results", daemon=True)
        self.reader.start()

    def submit(self, claims: Sequence[Claim]) -> Future[BuildReport]:
        future: Future[BuildReport] = Future()
        with self.lock:
            if self.broken is not None:
                future.set_exception(self.broken)
                return future
            key = self.next_key = self.next_key + 1
            self.futures[key] = future
        self.tasks.put((key, list(claims)))
        return future

    def shutdown(self) -> None:
        """Let the workers finish what was submitted, then end them and the zygote (a
        None task too, for a zygote still waiting for its first chunk)."""
        with contextlib.suppress(OSError):
            self.control.send("stop")
            self.tasks.put(None)
        self.zygote.join()
        self.reader.join()
        self.control.close()
        self._fail_all(BrokenProcessPool("the build workers were shut down"))

    def _read(self) -> None:
        while True:
            ready = wait([self.results, self.control, self.zygote.sentinel])
            conn = next((c for c in (self.results, self.control) if c in ready), None)
            if conn is None:  # the zygote ended and said all it had to
                self._fail_all(BrokenProcessPool("the build workers' zygote ended unexpectedly"))
                return
            try:
                kind, key, value = conn.recv()
            except (EOFError, OSError):  # closed; or reset, a word to it unread
                self._fail_all(BrokenProcessPool("the build workers ended unexpectedly"))
                return
            if kind == "closed":
                return
            self._handle(kind, key, value)

    def _handle(self, kind: str, key: int, value: Any) -> None:
        if kind == "fatal":
            self._fail_all(value)
            return
        if kind == "died":
            self._fail_all(BrokenProcessPool(f"a build worker {_ended(value)}"))
            return
        with self.lock:
            future = self.futures.pop(key, None)
        if future is None:
            return
        if kind == "done":
            future.set_result(value)
        else:
            future.set_exception(value)

    def _fail_all(self, exc: BaseException) -> None:
        with self.lock:
            if self.broken is None:
                self.broken = exc
            futures, self.futures = list(self.futures.values()), {}
        for future in futures:
            future.set_exception(exc)
