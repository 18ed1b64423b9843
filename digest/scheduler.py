"""The long-running scheduler behind `digest serve`.

APScheduler runs three kinds of job, stored in the application's own database
(`SQLAlchemyJobStore`, table `apscheduler_jobs`) so that a restart knows what it
missed:

- `fetch-arxiv`: arXiv announces new papers around 20:00 US Eastern, Sunday to
  Thursday; we fetch at 20:30 and again at 22:30 (late announcements) New York time.
- `fetch-daytime`: Hugging Face Daily Papers, RSS feeds and files publish through the
  day; fetched every `DIGEST_FETCH_EVERY_MINUTES`.
- `send-due`: every `DIGEST_SEND_EVERY_MINUTES`, build the editions that have come due
  in each subscriber's own zone and send the outbox (`pipeline.run_once`).
- `prune`: once a day, `digest prune` (the stored emails of finished digests older
  than `DIGEST_KEEP_MESSAGES_DAYS`, inbound events past `DIGEST_KEEP_EVENTS_DAYS`);
  not scheduled when both keep everything (0).

Every job coalesces (a backlog of missed runs becomes one run) and `send-due` has no
misfire limit, so after downtime it runs once at start-up and each subscriber gets a
single catch-up digest. Which digests are due is decided from the database
(`digest.schedule`), never from the job's own bookkeeping, so `digest run` from cron
and this scheduler can even run side by side without sending anything twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest import pipeline, schedule, store
from digest.config import Settings
from digest.logs import configure_logging, log_event
from digest.models import Subscriber, utcnow
from digest.pipeline.stopping import stop_on_signals
from digest.sources import parse_source_specs
from digest.sources.registry import SOURCE_KINDS, FetchTiming, SourceRegistry
from digest.states import SubscriberStatus
from digest.store import Engine

log = logging.getLogger("digest.scheduler")

JOBS_TABLE = "apscheduler_jobs"
ARXIV_ZONE = "America/New_York"
# A missed arXiv fetch is still worth running this late; later, the next one will do.
ARXIV_GRACE_SECONDS = 6 * 3600


@dataclass(frozen=True)
class JobSpec:
    """One job as configured; compared with the stored job to keep its missed runs."""

    id: str
    func: str
    trigger: BaseTrigger
    args: tuple[Any, ...] = ()
    misfire_grace_time: int | None = None

    def signature(self) -> tuple[str, ...]:
        tz = str(getattr(self.trigger, "timezone", ""))
        return (self.func, str(self.trigger), tz, repr(self.args))


def job_specs(settings: Settings, kinds: SourceRegistry = SOURCE_KINDS) -> list[JobSpec]:
    """The jobs this configuration needs, following when each kind of source publishes
    (its `FetchTiming` in the registry)."""
    specs = parse_source_specs(settings.sources, kinds)
    arxiv = [s for s in specs if _timing(s, kinds) is FetchTiming.ARXIV_ANNOUNCEMENTS]
    daytime = [s for s in specs if s not in arxiv]
    jobs = []
    if arxiv:
        jobs.append(
            JobSpec(
                "fetch-arxiv",
                "digest.scheduler:fetch_job",
                CronTrigger(
                    day_of_week="sun,mon,tue,wed,thu",
                    hour="20,22",
                    minute=30,
                    timezone=ZoneInfo(ARXIV_ZONE),
                ),
                (",".join(arxiv),),
                ARXIV_GRACE_SECONDS,
            )
        )
    if daytime:
        jobs.append(
            JobSpec(
                "fetch-daytime",
                "digest.scheduler:fetch_job",
                IntervalTrigger(minutes=settings.fetch_every_minutes),
                (",".join(daytime),),
                None,
            )
        )
    jobs.append(
        JobSpec(
            "send-due",
            "digest.scheduler:send_job",
            IntervalTrigger(minutes=settings.send_every_minutes),
            (),
            None,
        )
    )
    if settings.keep_messages_days or settings.keep_events_days:
        jobs.append(
            JobSpec("prune", "digest.scheduler:prune_job", IntervalTrigger(days=1), (), None)
        )
    return jobs


def _timing(spec: str, kinds: SourceRegistry) -> FetchTiming:
    kind = kinds.kind_of(spec)
    return kind.timing if kind is not None else FetchTiming.INTERVAL


# ---------------------------------------------------------------- jobs


@dataclass
class Runtime:
    """What jobs need but cannot be pickled into the job store (an engine, secrets)."""

    engine: Engine
    settings: Settings
    # Cleared while the start-up catch-up fetches, so that the sends due meanwhile
    # wait for it: the catch-up digest should hold what was published while we were down.
    fetched: threading.Event = field(default_factory=threading.Event)
    # The start-up catch-up overlaps the regular jobs; one fetch and one send at a time
    # keeps two threads from merging the same new paper or building the same edition.
    fetch_lock: threading.Lock = field(default_factory=threading.Lock)
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    # Set on shutdown: a fetch in flight stops at its next chunk or wait, so SIGTERM is
    # not held up by a slow feed (sends in flight still finish and are recorded).
    stopping: threading.Event = field(default_factory=threading.Event)


# Jobs are stored by reference and rebuilt after a restart, so they find the engine
# and settings here rather than in their (pickled) arguments. One per process.
_runtime: Runtime | None = None


def _current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the digest scheduler is not running in this process")
    return _runtime


def fetch_job(spec: str) -> None:
    rt = _current()
    with rt.fetch_lock:
        reports = pipeline.fetch_all(rt.engine, rt.settings, spec=spec, stop=rt.stopping)
    for report in reports:
        log_event(
            log,
            "fetch.done",
            logging.WARNING if report.failed else logging.INFO,
            source=report.name,
            new=report.new,
            updated=report.updated,
            known=report.known,
            errors=len(report.errors),
            failed=report.failed,
        )


def send_job() -> None:
    rt = _current()
    if not rt.fetched.is_set():
        log_event(log, "send.deferred", reason="start-up fetch still running")
        return
    # The next tick comes within minutes: do not wait in here for retries to come due,
    # or one pending retry would hold back every digest that becomes due meanwhile.
    settings = replace(rt.settings, run_retry_window_seconds=0)
    with rt.send_lock:
        report = pipeline.run_once(rt.engine, settings, fetch=False, stop=rt.stopping)
    b, s = report.build, report.send
    if b.built or b.nothing_new or b.empty or s.sent or s.failed:
        log_event(
            log,
            "send.done",
            logging.WARNING if s.failed else logging.INFO,
            built=b.built,
            nothing_new=b.nothing_new,
            empty=b.empty,
            already=b.already,
            not_due=report.not_due,
            sent=s.sent,
            failed=s.failed,
        )
    for error in s.errors[:20]:
        log_event(log, "send.failed", logging.WARNING, error=error)
    if report.error:  # a database fault stopped the job early; the next tick tries again
        log_event(log, "send.error", logging.ERROR, error=report.error)


def prune_job() -> None:
    """Delete what retention allows (see `digest.store.retention`), in batches that
    stop at shutdown; its own short transactions let sends go on meanwhile."""
    rt = _current()
    s = rt.settings
    report = store.prune(rt.engine, s.keep_messages_days, s.keep_events_days, stop=rt.stopping)
    log_event(
        log,
        "prune.done",
        messages=report.messages,
        message_bytes=report.message_bytes,
        events=report.events,
    )


def catch_up_job() -> None:
    """At start-up: fetch everything once, then send what came due while we were down."""
    rt = _current()
    try:
        fetch_job(rt.settings.sources)
    finally:
        rt.fetched.set()
    send_job()


# ---------------------------------------------------------------- start / stop


def _sync_jobs(scheduler: BackgroundScheduler, settings: Settings) -> None:
    """Make the stored jobs match the configuration. A job whose definition did not
    change is left alone, so the run it missed while we were down still fires."""
    wanted = {spec.id: spec for spec in job_specs(settings)}
    for job in scheduler.get_jobs(jobstore="default"):
        if job.id not in wanted:
            job.remove()
    for spec in wanted.values():
        job = scheduler.get_job(spec.id, jobstore="default")
        if job is not None:
            stored = JobSpec(spec.id, job.func_ref, job.trigger, tuple(job.args))
            if stored.signature() == spec.signature():
                job.modify(misfire_grace_time=spec.misfire_grace_time)
                continue
        scheduler.add_job(
            spec.func,
            spec.trigger,
            args=spec.args,
            id=spec.id,
            name=spec.id,
            jobstore="default",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=spec.misfire_grace_time,
        )


def start_scheduler(engine: Engine, settings: Settings, catch_up: bool = True) -> Any:
    """A started BackgroundScheduler running the digest jobs in this process.

    With `catch_up`, one fetch-then-send runs at once, so a server that was down for
    days sends each due subscriber their one catch-up digest right away.
    """
    global _runtime
    if _runtime is not None:
        raise RuntimeError("a digest scheduler is already running in this process")
    _runtime = Runtime(engine, settings)
    if not catch_up:
        _runtime.fetched.set()
    scheduler = BackgroundScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE),
            "volatile": MemoryJobStore(),
        },
        executors={"default": ThreadPoolExecutor(max_workers=3)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone="UTC",
    )
    try:
        scheduler.start(paused=True)
        _sync_jobs(scheduler, settings)
        if catch_up:
            scheduler.add_job(
                catch_up_job, id="catch-up", jobstore="volatile", misfire_grace_time=None
            )
        scheduler.resume()
    except Exception:
        _runtime = None
        if scheduler.running:
            scheduler.shutdown(wait=False)
        raise
    log_event(log, "scheduler.started", jobs=[s.id for s in job_specs(settings)])
    return scheduler


def stop_scheduler(scheduler: Any) -> None:
    """Stop taking new runs, stop the fetches in flight, and wait for running jobs, so
    in-flight sends finish and are recorded before the process exits."""
    global _runtime
    if _runtime is not None:
        _runtime.stopping.set()
    if scheduler.running:
        scheduler.shutdown(wait=True)
    _runtime = None
    log_event(log, "scheduler.stopped")


def serve_forever(engine: Engine, settings: Settings) -> int:
    """Scheduler-only mode: run until SIGTERM or Ctrl-C; returns the exit code (0)."""
    configure_logging(settings.log_format, settings.log_level)
    with stop_on_signals() as stop:
        scheduler = start_scheduler(engine, settings)
        try:
            while not stop.event.wait(3600):
                pass
        finally:
            stop_scheduler(scheduler)
    return 0


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class StoredJob:
    """A job as the job store keeps it: its next run, and the interval of an interval
    job (from which its last run follows)."""

    next_run_at: datetime | None
    interval_seconds: float | None


def _stored_jobs(engine: Engine) -> dict[str, StoredJob] | None:
    """The jobs in the job store, or None when no scheduler has ever run here (no
    job store)."""
    if not store.has_table(engine, JOBS_TABLE):
        return None
    jobstore = SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)
    jobstore.start(BackgroundScheduler(timezone="UTC"), "default")
    try:
        return {
            job.id: StoredJob(
                job.next_run_time,
                job.trigger.interval_length if isinstance(job.trigger, IntervalTrigger) else None,
            )
            for job in jobstore.get_all_jobs()
        }
    finally:
        jobstore.shutdown()


def scheduler_state(stored: dict[str, StoredJob] | None, now: datetime) -> dict[str, Any]:
    """What `digest status` can truthfully say about the scheduler: whether one has
    ever run against this database, when it was last alive (the latest run of an
    interval job: its next run less its interval), and whether its runs are overdue
    (then it is not running now: `digest serve` is stopped, or was never started)."""
    if stored is None:
        return {"has_run": False, "last_alive_at": None, "overdue": False}
    runs = [schedule.as_utc(j.next_run_at) for j in stored.values() if j.next_run_at]
    last = [
        schedule.as_utc(j.next_run_at) - timedelta(seconds=j.interval_seconds)
        for j in stored.values()
        if j.next_run_at and j.interval_seconds
    ]
    alive = min(max(last), now) if last else None
    # A minute of slack: a job about to fire is not a stopped scheduler.
    overdue = bool(runs) and min(runs) < now - timedelta(minutes=1)
    return {
        "has_run": True,
        "last_alive_at": alive.isoformat() if alive else None,
        "overdue": overdue,
    }


def _next_digest(
    sub: Any, now: datetime, last_at: datetime | None, last_edition: str | None
) -> schedule.Slot:
    """What this subscriber will really get next, by the rules `pipeline.due_editions`
    sends by (including its fallback for a row whose schedule cannot be used)."""
    plan, _ = schedule.checked(sub)
    return schedule.upcoming_slot(plan, now, last_at, last_edition)


def _last_of(
    last: Mapping[int, tuple[datetime, str]], sub: Subscriber
) -> tuple[datetime | None, str | None]:
    """When `sub`'s latest edition was built and its key; (None, None) if never."""
    return last.get(sub.id, (None, None)) if sub.id is not None else (None, None)


def status_info(engine: Engine, settings: Settings, now: datetime | None = None) -> dict:
    """For `digest status`: last fetch per source, the scheduler's state and its
    stored next runs (none when no scheduler has run), next digests."""
    now = now or utcnow()
    active = store.list_subscribers(engine, status=SubscriberStatus.ACTIVE)
    stored = _stored_jobs(engine)
    # Only runs a scheduler stored: without one, nothing fetches or sends on its own.
    next_runs = [
        {"job": job_id, "next_run_at": schedule.as_utc(job.next_run_at).isoformat()}
        for job_id, job in sorted((stored or {}).items())
        if job.next_run_at is not None
    ]
    sources = [
        {
            "source": s.name,
            "last_fetch_at": s.last_fetch_at.isoformat() if s.last_fetch_at else None,
            "last_status": s.last_status,
            "last_error": s.last_error,
            "last_counts": s.last_counts,
        }
        for s in store.list_source_states(engine)
    ]
    last = store.last_editions(engine, [sub.id for sub in active if sub.id is not None])
    upcoming = sorted(
        ((_next_digest(sub, now, *_last_of(last, sub)), sub.email) for sub in active),
        key=lambda pair: (pair[0].at, pair[1]),
    )
    next_digests = [
        {"email": email, "edition": slot.edition, "at": slot.at.isoformat()}
        for slot, email in upcoming[:10]
    ]
    return {
        "sources": sources,
        "scheduler": scheduler_state(stored, now),
        "next_runs": next_runs,
        "next_digests": next_digests,
    }


def status_report(engine: Engine, settings: Settings) -> dict[str, Any]:
    """`digest status` as data: one key per section. Delivery gives `editions` (counts
    per status), `last_errors` and `suspended_subscribers`; scheduling gives `sources`
    (last fetch of each), `next_runs` (the scheduler's jobs), `next_digests` (the
    soonest subscriber digests); and the last edition's counts. Assembled here, above
    the pipeline, because the scheduling part is the scheduler's."""
    report = {**store.delivery_status(engine)}
    report.update(status_info(engine, settings))
    editions = report.get("editions") or []
    report["last_edition"] = editions[0] if editions else None
    return report
