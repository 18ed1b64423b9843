"""`digest worker`: a long-running process that builds due editions and sends, pass
after pass, until told to stop. Any number of workers (and `digest run`s) can share
one database: claims give each digest to exactly one of them, the outbox's leases
share the sending, and a worker killed mid-edition leaves its claims to the others
once its lease runs out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from digest.config import Settings
from digest.pipeline.run import RunReport, run_once
from digest.store import Engine


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
    what it sent, so nothing is left half-done."""
    settings = replace(settings, run_retry_window_seconds=0)
    passes = 0
    while not stop.is_set():
        began = time.monotonic()
        report = run_once(engine, settings, fetch=fetch, stop=stop, say=say)
        passes += 1
        if on_pass is not None:
            on_pass(report)
        stop.wait(max(0.0, interval - (time.monotonic() - began)))
    return passes
