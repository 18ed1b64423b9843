"""`digest worker`: a long-running process that builds due editions and sends, pass
after pass, until told to stop. Any number of workers (and `digest run`s) can share
one database: claims give each digest to exactly one of them, the outbox's leases
share the sending, and a worker killed mid-edition leaves its claims to the others
once its lease runs out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from digest.config import Settings
from digest.logs import log_event
from digest.pipeline.run import RunReport, run_once
from digest.store import DatabaseError, Engine

log = logging.getLogger(__name__)
MAX_BACKOFF = 300.0  # seconds: the longest wait after passes failed in a row


def work_until_stopped(
    engine: Engine,
    settings: Settings,
    stop: threading.Event,
    interval: float,
    fetch: bool = False,
    on_pass: Callable[[RunReport], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> int:
    """Run passes every `interval` seconds until `stop` is set; returns how many ran.

    A pass does not wait for retries to come due (the next pass comes soon, and one
    pending retry must not hold back digests that come due meanwhile). On `stop`, the
    pass in flight claims nothing more, finishes the chunks it claimed and records
    what it sent, so nothing is left half-done. A pass the database (or the disk)
    failed is logged (`worker.pass_failed`) and the next one follows, later each time
    while they keep failing (up to MAX_BACKOFF)."""
    settings = replace(settings, run_retry_window_seconds=0)
    passes = failed_in_a_row = 0
    while not stop.is_set():
        began = time.monotonic()
        report: RunReport | None = None
        try:
            report = run_once(engine, settings, fetch=fetch, stop=stop, say=say)
            error = report.error
        except (DatabaseError, OSError) as exc:
            error = " ".join(str(exc).split())[:300] or type(exc).__name__
        passes += 1
        if report is not None and on_pass is not None:
            on_pass(report)  # what it did, even if a fault stopped it early
        if error:
            # A database restarting (or locked past its timeout), a disk full: the
            # next pass may well succeed, and each write is one transaction, so
            # nothing was half-done. A long-running worker says so and goes on,
            # backing off while it lasts, instead of exiting.
            failed_in_a_row += 1
            wait = min(interval * 2 ** min(failed_in_a_row - 1, 16), max(interval, MAX_BACKOFF))
            log_event(log, "worker.pass_failed", logging.ERROR, error=error, retry_in=wait)
            stop.wait(wait)
            continue
        failed_in_a_row = 0
        stop.wait(max(0.0, interval - (time.monotonic() - began)))
    return passes
