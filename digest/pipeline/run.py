"""A whole run: fetch, then build the due editions while sending what is built.

Building (in this thread, its chunks in the build pool) and sending (in its own
thread and event loop) overlap: the sender starts on the first committed chunk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest import store
from digest.config import Settings
from digest.delivery import Transport, make_transport
from digest.delivery.sender import SendReport, send_due
from digest.logs import log_event
from digest.models import Subscriber, utcnow
from digest.pipeline.build import BuildReport
from digest.pipeline.editions import build_due, failure
from digest.pipeline.fetch import SourceReport, fetch_all
from digest.pipeline.progress import Tracker, no_tracking
from digest.pipeline.sending import BuildFeed, SendingThread
from digest.states import SubscriberStatus
from digest.store import DatabaseError, Engine

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    fetch: list[SourceReport]
    build: BuildReport
    send: SendReport
    not_due: int = 0  # active subscribers whose next digest is not due yet
    seconds: float = 0.0
    error: str = ""  # a database (or disk) error that stopped the run early

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and not self.send.failed
            and not self.build.failed
            and not self.build.broken
            and not any(r.failed for r in self.fetch)
        )

    def to_json(self) -> dict[str, Any]:
        """`digest run --json`: counts that add up across processes sharing an edition
        (each digest is counted as built by exactly one of them)."""
        b, s = self.build, self.send
        return {
            "built": b.built,
            "empty": b.empty,
            "already": b.already,
            "nothing_new": b.nothing_new,
            "failed": b.failed,
            "sent": s.sent,
            "retrying": s.deferred,
            "bounced": s.bounced,
            "not_due": self.not_due,
            "gave_up": s.gave_up,
            "suspended": s.suspended,
            "not_sent": s.not_sent,
            "taken_over": b.taken_over,
            "chunks": b.chunks,
            "build_broken": b.broken or None,
            "unbuilt": b.unbuilt,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "stopped": s.stopped or None,
            "error": self.error or None,
            "build_errors": b.errors[:100],
            "send_errors": s.errors[:100],
            "fetch": [r.to_json() for r in self.fetch],
        }


def active_subscribers(engine: Engine) -> list[Subscriber]:
    return store.list_subscribers(engine, status=SubscriberStatus.ACTIVE)


def run_once(
    engine: Engine,
    settings: Settings,
    dry_run: bool = False,
    fetch: bool = True,
    transport: Transport | None = None,
    now: datetime | None = None,
    everyone: bool = False,
    track: Tracker = no_tracking,
    say: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Fetch, build the edition of every subscriber whose digest has come due (all of
    them with `everyone`), and send every outbox row that is due, retries included,
    starting as soon as the first chunk is committed. `say` hears what sending waits
    for (a dead relay, a retry), as it happens; `stop` (a shutdown) ends claiming and
    sending early, leaving the rest to the next run."""
    started = time.monotonic()
    fetched = fetch_all(engine, settings, track=track, stop=stop) if fetch else []
    now = now or utcnow()
    if dry_run:
        built, not_due = build_due(engine, settings, now, everyone, True, track=track, stop=stop)
        return RunReport(fetched, built, SendReport(), not_due, time.monotonic() - started)
    feed = BuildFeed(stop)
    sending = SendingThread(engine, settings, transport or make_transport(settings), feed, say)
    done_sending = track("sending", None)
    sending.start()
    error = ""
    try:
        try:
            built, not_due = build_due(
                engine, settings, now, everyone, on_chunk=feed.more, track=track, stop=stop
            )
        except (DatabaseError, OSError) as exc:  # before anything was claimed
            error = f"database: {failure(exc)}"
            built, not_due = BuildReport(broken=error, error=error), 0
        # building is over while sending goes on: an operator (and bench/edition.py)
        # sees when, without counting the outbox
        log_event(
            log,
            "run.built",
            built=built.built,
            empty=built.empty,
            failed=built.failed,
            seconds=round(time.monotonic() - started, 1),
        )
    finally:
        feed.finish()
        try:
            sent = sending.join()
        except (DatabaseError, OSError) as exc:
            # What was recorded before the fault; the rows still leased go back to
            # the outbox when their lease ends (DIGEST_LEASE_SECONDS).
            sent = sending.sender.report
            sent.stopped = f"database: {failure(exc)}; the rest stays queued for the next run"
            error = error or sent.stopped
    error = error or built.error
    done_sending(sent.sent + sent.failed)
    return RunReport(fetched, built, sent, not_due, time.monotonic() - started, error)


def retry_failed(
    engine: Engine,
    settings: Settings,
    edition: str | None = None,
    send: bool = True,
    transport: Transport | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[int, SendReport]:
    """`digest retry`: put failed digests back in the outbox and make waiting retries
    due now, then send them at once (no waiting for their retry time)."""
    pushed = store.retry_failed(engine, edition)
    if not send:
        return pushed, SendReport()
    return pushed, asyncio.run(
        send_due(engine, settings, transport or make_transport(settings), say=say)
    )
