"""`digest serve`: APScheduler runs the daily edition at DIGEST_SEND_AT."""

from __future__ import annotations

import contextlib
import logging
import signal
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from digest import pipeline
from digest.config import Settings

log = logging.getLogger("digest.scheduler")


def daily_job(engine: Engine, settings: Settings) -> None:
    report = pipeline.run_once(engine, settings)
    log.info(
        "edition done: built=%s empty=%s sent=%s failed=%s",
        report.build.built,
        report.build.empty,
        report.send.sent,
        report.send.failed,
    )


def make_scheduler(engine: Engine, settings: Settings) -> BlockingScheduler:
    hour, minute = (int(x) for x in settings.send_at.split(":"))
    scheduler = BlockingScheduler(timezone=settings.timezone)
    scheduler.add_job(
        daily_job,
        CronTrigger(hour=hour, minute=minute, timezone=settings.timezone),
        args=(engine, settings),
        id="daily-edition",
        coalesce=True,
        misfire_grace_time=6 * 3600,
        max_instances=1,
        replace_existing=True,
    )
    return scheduler


def serve_forever(engine: Engine, settings: Settings) -> None:
    """Block until Ctrl-C or SIGTERM; a running edition finishes before exit."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(message)s")
    scheduler = make_scheduler(engine, settings)

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping after running jobs finish", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, _stop)
    log.info("scheduler started; daily edition at %s %s", settings.send_at, settings.timezone)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
