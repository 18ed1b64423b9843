"""Fetching: every configured source into the store, one failing source never
stopping the others."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from digest import semantic, store
from digest.config import Settings
from digest.errors import SourceError
from digest.models import utcnow
from digest.pipeline.progress import Tracker, no_tracking
from digest.sources import build_sources
from digest.states import FetchStatus
from digest.store import Engine

log = logging.getLogger(__name__)


@dataclass
class SourceReport:
    """What one source's fetch did to the store, as an operator reads it: `new`
    papers stored for the first time; `updated` stored papers whose fields changed
    (a longer abstract, more upvotes, an arXiv revision); `known` stored papers it
    brought nothing new to, whichever source stored them first (this source is
    still added to the paper's `sources`)."""

    name: str
    new: int = 0
    updated: int = 0
    known: int = 0
    skipped: int = 0  # revisions (arXiv `replace`) of papers never stored
    errors: list[str] = field(default_factory=list)
    failed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "new": self.new,
            "updated": self.updated,
            "known": self.known,
            "skipped": self.skipped,
            "errors": self.errors,
            "failed": self.failed,
        }


def fetch_all(
    engine: Engine,
    settings: Settings,
    since: date | None = None,
    spec: str | None = None,
    track: Tracker = no_tracking,
    stop: threading.Event | None = None,
) -> list[SourceReport]:
    """Fetch every configured source; one failing source never stops the others, and
    a source's papers and cursor are saved together only when its fetch succeeded.
    Each fetch ends by DIGEST_FETCH_DEADLINE_SECONDS; setting `stop` (a shutdown) ends
    the one in flight at once and skips the rest."""
    reports = []
    sources = build_sources(settings, spec, stop=stop)
    advance = track("fetching sources", len(sources))
    for source in sources:
        if stop is not None and stop.is_set():
            break
        report = SourceReport(source.name)
        state = store.get_source_state(engine, source.name)
        state.last_fetch_at = utcnow()
        try:
            batch = source.fetch(dict(state.cursor or {}), since)
        except Exception as exc:  # one broken source must not stop the others
            message = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, SourceError):
                log.debug("source %s crashed", source.name, exc_info=True)
            report.failed = True
            report.errors.append(message)
            state.last_status, state.last_error = FetchStatus.ERROR, message[:1000]
        else:
            counts = store.merge_papers(engine, batch.records)
            report.new, report.updated, report.known = counts.new, counts.updated, counts.known
            report.skipped = counts.skipped
            report.errors.extend(batch.warnings)
            state.cursor = batch.cursor
            state.last_status = FetchStatus.OK
            state.last_error = "; ".join(batch.warnings)[:1000] or None
        state.last_counts = {
            "new": report.new,
            "updated": report.updated,
            "known": report.known,
            "errors": len(report.errors),
        }
        store.save_source_state(engine, state)
        reports.append(report)
        advance(1)
    if any(r.new or r.updated for r in reports):
        # once per paper, when fetched (nothing unless a subscriber has an interest)
        semantic.embed_new_papers(engine, settings)
    return reports
