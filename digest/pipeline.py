"""Wires the stages in their one direction: sources -> store -> matching -> rendering ->
delivery. The CLI and the scheduler call these functions and nothing deeper.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from digest import schedule, semantic, store
from digest.config import Settings
from digest.delivery import Transport, make_transport
from digest.delivery.sender import SendReport, send_due
from digest.errors import InputError, SourceError
from digest.logs import log_event
from digest.matching import Match, Weights, rank
from digest.models import Digest, Paper, Subscriber, utcnow
from digest.rendering import Item, build_message, make_environment, render_digest
from digest.sources import build_sources
from digest.states import DigestStatus, FetchStatus, SubscriberStatus
from digest.store import Engine

log = logging.getLogger(__name__)

# A progress hook: `track(label, total)` starts a task and returns its `advance(n)`.
# The CLI passes one that draws progress bars; everything else passes nothing.
Tracker = Callable[[str, int | None], Callable[[int], None]]


def no_tracking(label: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None


# ---------------------------------------------------------------- fetch


@dataclass
class SourceReport:
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


# ---------------------------------------------------------------- editions


@dataclass
class BuildReport:
    built: int = 0
    empty: int = 0
    already: int = 0
    nothing_new: int = 0  # empty editions sent anyway, to subscribers with notify_empty
    failed: int = 0  # digests that could not be built (recorded as failed, not sent)
    errors: list[str] = field(default_factory=list)
    previews: list[tuple[str, bytes]] = field(default_factory=list)


def due_editions(
    engine: Engine, subscribers: Sequence[Subscriber], now: datetime, everyone: bool = False
) -> dict[int, str]:
    """Subscriber id -> edition key for every subscriber whose digest is due at `now`.

    Due means their latest scheduled slot (in their own zone and frequency) came after
    their previous edition, so a run after any downtime yields one catch-up edition.
    `everyone` (`digest run --now`) makes every subscriber due with today's edition
    (their local date), so even then nobody gets two digests for one day.
    """
    last = {} if everyone else store.last_editions(engine, [_stored_id(s) for s in subscribers])
    out: dict[int, str] = {}
    for sub in subscribers:
        plan, ok = schedule.checked(sub)
        if not ok:
            log_event(
                log,
                "schedule.unusable",
                logging.WARNING,
                subscriber=sub.id,
                timezone=sub.timezone,
                send_at=sub.send_at,
                frequency=sub.frequency,
                using="UTC 07:00 daily",
            )
        if everyone:
            out[_stored_id(sub)] = schedule.edition_at(plan, now)
            continue
        at, edition = last.get(_stored_id(sub)) or (None, None)
        slot = schedule.due_slot(plan, now, at, edition)
        if slot is not None:
            out[_stored_id(sub)] = slot.edition
    return out


def _stored_id(sub: Subscriber) -> int:
    """The id of a subscriber read from the database: the model allows None only for a
    row not inserted yet, which the pipeline never sees."""
    assert sub.id is not None, "subscriber not stored"
    return sub.id


def _first_digest_seq(engine: Engine, settings: Settings, now: datetime) -> Callable[[], int]:
    """Where a subscriber with no digest yet starts: papers first seen in the last
    DIGEST_FIRST_DIGEST_DAYS. Looked up once per run, not once per new subscriber."""
    cached: list[int] = []

    def start() -> int:
        if not cached:
            since = now - timedelta(days=settings.first_digest_days)
            cached.append(store.seq_first_seen_since(engine, since))
        return cached[0]

    return start


def build_editions(
    engine: Engine,
    settings: Settings,
    subscribers: Sequence[Subscriber],
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    editions: Mapping[int, str] | None = None,
) -> BuildReport:
    """Write one outbox row per subscriber for this edition, before anything is sent.

    Each row and the subscriber's advanced watermark are committed together, so a
    paper is never given to the same subscriber twice and never skipped. `editions`
    (from `due_editions`) gives each subscriber's edition key; by default it is their
    local date at `now`.
    """
    now = now or utcnow()
    report = BuildReport()
    env = make_environment(settings)
    weights = Weights.from_settings(settings)
    top = store.max_paper_seq(engine)
    keys = {
        _stored_id(s): (editions or {}).get(_stored_id(s))
        or schedule.edition_at(schedule.checked(s)[0], now)
        for s in subscribers
    }
    done = store.editions_done(engine, keys)
    first_seq = _first_digest_seq(engine, settings, now)
    groups: dict[int, list[Subscriber]] = defaultdict(list)
    for sub in subscribers:
        if (_stored_id(sub), keys[_stored_id(sub)]) in done:
            report.already += 1
            continue
        start = sub.last_paper_seq if sub.last_paper_seq is not None else first_seq()
        groups[start].append(sub)
    # "more / less like this" from earlier digests, for everyone built, in bulk
    rated = store.rated_examples(engine, [_stored_id(s) for g in groups.values() for s in g])
    for start, subs in groups.items():
        papers = store.papers_after(engine, start, top)
        by_id = {p.id: p for p in papers}
        # compiled once per profile text and cached; one paper index per group;
        # interests bring their stored vectors, the papers theirs (semantic.py)
        profiles = semantic.profiles_of(engine, settings, subs, rated)
        ready = semantic.paper_set(engine, settings, papers, profiles.values())
        results = rank(profiles, ready, weights)
        rows: list[tuple[Subscriber, Digest]] = []
        for sub in subs:
            matches = results.get(_stored_id(sub), [])
            edition = keys[_stored_id(sub)]
            row = Digest(
                subscriber_id=sub.id,
                edition=edition,
                recipient=sub.email,
                paper_seq_from=start,
                paper_seq_to=top,
                created_at=now,
            )
            if matches or sub.notify_empty:
                try:
                    _render_into(
                        row, env, settings, sub, matches, by_id, date.fromisoformat(edition)
                    )
                except InputError as exc:
                    # One subscriber's bad data (an address a message cannot carry)
                    # fails that digest alone, visibly, and keeps their papers for later.
                    row.status, row.last_error = DigestStatus.FAILED, str(exc)[:500]
                    report.failed += 1
                    report.errors.append(f"{sub.email}: {exc}")
                    rows.append((sub, row))
                    continue
                if matches:
                    report.built += 1
                else:
                    report.nothing_new += 1
                if dry_run:
                    report.previews.append((sub.email, row.message or b""))
            else:
                row.status = DigestStatus.EMPTY
                report.empty += 1
            rows.append((sub, row))
            if progress:
                progress(1)
        if not dry_run:
            store.commit_rows(engine, rows, top, now)
    return report


def _render_into(
    row: Digest,
    env: Any,
    settings: Settings,
    sub: Subscriber,
    matches: list[Match],
    by_id: dict[str, Paper],
    edition: date,
) -> None:
    items = [Item(by_id[m.paper_id], m) for m in matches if m.paper_id in by_id]
    rendered = render_digest(
        env,
        settings,
        sub.email,
        items,
        edition,
        f"{sub.id}:{row.edition}",
        sub.keywords,
        token_version=sub.token_version,
    )
    if not items:  # notify_empty: a short "nothing new" note instead of silence
        rendered.subject = f"Nothing new for your profile - {edition.strftime('%d %b').lstrip('0')}"
    msg = build_message(settings, sub.email, rendered)
    row.message_id = str(msg["Message-ID"])
    row.subject = rendered.subject
    row.message = msg.as_bytes()
    row.paper_ids = [i.paper.id for i in items]
    row.explanations = {m.paper_id: m.to_json() for m in matches}


# ---------------------------------------------------------------- run


@dataclass
class RunReport:
    fetch: list[SourceReport]
    build: BuildReport
    send: SendReport
    not_due: int = 0  # active subscribers whose next digest is not due yet

    @property
    def ok(self) -> bool:
        return (
            not self.send.failed and not self.build.failed and not any(r.failed for r in self.fetch)
        )


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
) -> RunReport:
    """Fetch, build the edition of every subscriber whose digest has come due (all of
    them with `everyone`), then send every outbox row that is due, retries included.
    `say` hears what sending waits for (a dead relay, a retry), as it happens."""
    fetched = fetch_all(engine, settings, track=track) if fetch else []
    now = now or utcnow()
    subs = active_subscribers(engine)
    editions = due_editions(engine, subs, now, everyone)
    due = [s for s in subs if s.id in editions]
    built = build_editions(
        engine, settings, due, now, dry_run, track("building digests", len(due)), editions
    )
    not_due = len(subs) - len(due)
    if dry_run:
        return RunReport(fetched, built, SendReport(), not_due)
    done_sending = track("sending", None)
    sent = asyncio.run(send_due(engine, settings, transport or make_transport(settings), say=say))
    done_sending(sent.sent + sent.failed)
    return RunReport(fetched, built, sent, not_due)


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
