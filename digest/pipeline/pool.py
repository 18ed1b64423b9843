"""Where chunks are built: in this process, or in a pool of worker processes (both
cores, or however many DIGEST_BUILD_WORKERS says).

Workers are forked from one warm process per edition (`digest.pipeline.forked`:
imports, templates and the edition's indexed papers made once, not per worker), never
from this process with its sender thread and connections. Each worker keeps one
`EditionBuilder`, so the engine, renderer and indexed papers are made once per
edition, not once per chunk; a chunk travels there as a list of claims and comes back
as a `BuildReport` (the worker commits its chunk itself, so rendered messages never
cross processes).

A worker is replaced after WORKER_DIGESTS digests' worth of chunks: what it keeps
between chunks is bounded (papers, cards, encoded lines, the compiled-profile caches
of `digest.matching`), but a worker in a real edition still grew by ~10 kB per
digest it built (measured at 100,000 subscribers: ~475 MiB after 10,000 digests,
~530 MiB after 20,000), much of it filling those bounds and the allocator's
high-water mark. Starting afresh every 5,000 digests keeps a worker's memory flat
whatever the edition's size; forked from the warm zygote, a new worker costs only
what it learns per paper and card again, not a new interpreter.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import TypeVar

from digest.config import Settings
from digest.pipeline.build import BuildReport, EditionBuilder, EditionPlan
from digest.pipeline.forked import ForkedWorkers, Tuning
from digest.store import Engine
from digest.store.claims import Claim, SubscriberRow

T = TypeVar("T")

WORKER_DIGESTS = 5_000  # digests a build worker builds before it is replaced

# A worker allocates millions of small objects per chunk (matches, spans, card lines)
# that reference counting frees; the cyclic collector's default trigger (every 700
# allocations) made it walk the worker's long-lived heap (indexed papers, templates,
# caches) again and again: 17-24% of build CPU. A worker is a batch process, replaced
# every WORKER_DIGESTS, so it collects 30x less often, and once its edition's papers
# are indexed (after its first chunk) it leaves that state out of every collection.
# Rendering makes no cyclic garbage once a run's templates are learned (gc.collect()
# after 1,500 more digests finds nothing), so the young generation may grow to
# 100,000 objects: a young collection walks every live young container whole (the
# card cache's newest dict among them), and 5x fewer of them took GC from 4.5% to
# 2.9% of bench/render.py's CPU.
GC_THRESHOLDS = (100_000, 20, 100)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    return trim if callable(trim) else None


def _release_freed_memory() -> None:
    """Give the pages a chunk freed back to the system. A chunk's messages (tens of
    MB) are freed once committed, but glibc keeps the freed heap pages, so a worker's
    resident size would stay at its busiest chunk's high-water mark between chunks; two
    workers rarely peak at the same moment, so the run's summed memory is lower."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def build_workers(settings: Settings, subscribers: int) -> int:
    """How many processes build: DIGEST_BUILD_WORKERS (0: one per CPU), and just this
    one for an edition that fits in one chunk (starting processes would cost more)."""
    wanted = settings.build_workers or os.cpu_count() or 1
    if subscribers <= settings.edition_chunk:
        return 1
    return max(1, wanted)


def chunks_per_worker(settings: Settings) -> int:
    """Chunks a build worker takes before it is replaced (see WORKER_DIGESTS)."""
    return max(1, WORKER_DIGESTS // settings.edition_chunk)


class ChunkRunner:
    """Builds chunks in this process (`workers == 1`) or in worker processes forked
    from a warm zygote (`digest.pipeline.forked`); used as a context manager so the
    workers are always ended."""

    def __init__(self, plan: EditionPlan, engine: Engine, workers: int) -> None:
        self.plan = plan
        self.workers = workers
        self.local = EditionBuilder(plan, engine) if workers <= 1 or plan.dry_run else None
        self.pool: ForkedWorkers | None = None
        if self.local is None:
            tuning = Tuning(
                workers, chunks_per_worker(plan.settings), GC_THRESHOLDS, _release_freed_memory
            )
            self.pool = ForkedWorkers(plan, tuning)

    def __enter__(self) -> ChunkRunner:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    @property
    def ahead(self) -> int:
        """Chunks to have submitted at once: two per worker, so that none waits for this
        process (busy sending too) to claim its next chunk."""
        return 2 * self.workers if self.pool is not None else 1

    def submit(self, claims: Sequence[Claim]) -> Future[BuildReport]:
        if self.pool is not None:
            return self.pool.submit(claims)
        assert self.local is not None
        return _done(self.local.build_claims, claims)

    def preview(self, pairs: Sequence[tuple[SubscriberRow, str, int]]) -> Future[BuildReport]:
        """A dry run's chunk: built here, nothing claimed or written."""
        assert self.local is not None
        return _done(self.local.build, pairs)


def _done(fn: Callable[[T], BuildReport], arg: T) -> Future[BuildReport]:
    """Run here and now, answered as a pool would answer."""
    future: Future[BuildReport] = Future()
    try:
        future.set_result(fn(arg))
    except Exception as exc:
        future.set_exception(exc)
    return future
