"""`digest worker`: build and send due editions until SIGTERM or SIGINT."""

from __future__ import annotations

import json
import signal
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.base import _engine, _say, _settings, app, err
from digest.config import check_secret, check_smtp_login
from digest.logs import configure_logging

if TYPE_CHECKING:  # imported by the command, for start-up cost
    from digest import pipeline


@app.command()
def worker(
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.1, max=86400, help="Seconds between passes."),
    ] = 60.0,
    fetch: Annotated[
        bool, typer.Option("--fetch/--no-fetch", help="Fetch sources at each pass too.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each pass's report as one JSON line.")
    ] = False,
) -> None:
    """Run until SIGTERM or SIGINT: every --interval seconds, build the digests that
    came due and send the outbox. Start as many as you like, on one machine or many,
    against one PostgreSQL database: each digest is built by exactly one of them, and
    a worker killed mid-edition leaves its share to the others after DIGEST_LEASE_SECONDS.
    On a signal, the pass in flight finishes what it claimed, then the worker exits 0."""
    from digest.pipeline.stopping import stop_on_signals
    from digest.pipeline.worker import work_until_stopped

    settings = _settings()
    check_secret(settings)  # the digests' links are signed with it
    check_smtp_login(settings)
    configure_logging(settings.log_format, settings.log_level)
    engine = _engine(settings)

    def _report(report: pipeline.RunReport) -> None:
        data = report.to_json()
        if as_json:
            sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif report.build.done or report.send.sent or report.send.failed:
            counts = ("built", "empty", "nothing_new", "failed", "already", "sent", "retrying")
            typer.echo(" ".join(f"{k}={data[k]}" for k in counts))

    def _finishing(sig: signal.Signals) -> None:
        err.print(f"{sig.name}: finishing the current pass, then exiting")

    with stop_on_signals(_finishing, insist=True) as stop:
        work_until_stopped(engine, settings, stop.event, interval, fetch, _report, _say)
