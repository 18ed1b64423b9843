"""`digest prune`: delete what the database no longer needs (the stored emails of
finished digests, old inbound events), as `digest serve` does once a day. See
`digest.store.retention` for what is kept and why."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.base import _engine, _print_json, _settings, app

# `store.PRUNE_BATCH`, written out: the default must be known to `digest --help` without
# importing the store (SQLAlchemy); tests/cli/test_cli_startup.py checks they agree.
PRUNE_BATCH = 500


def _size(n: int) -> str:
    """Bytes for a person: 0 B, 67.0 kB, 6.7 GB (decimal units, as `df -H`)."""
    if n < 1000:
        return f"{n} B"
    value, units = n / 1000, ["MB", "GB", "TB"]
    unit = "kB"
    while value >= 1000 and units:
        value, unit = value / 1000, units.pop(0)
    return f"{value:.1f} {unit}"


def _kept(days: int) -> str:
    return f"older than {days} days" if days else "none: kept forever"


@app.command()
def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    batch: Annotated[
        int,
        typer.Option(
            "--batch",
            min=1,
            max=100_000,
            help="Digests looked at per transaction (each deletes at most this many emails).",
        ),
    ] = PRUNE_BATCH,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False,
) -> None:
    """Delete the stored emails of finished digests (sent, bounced, failed, empty)
    older than DIGEST_KEEP_MESSAGES_DAYS and inbound events older than
    DIGEST_KEEP_EVENTS_DAYS. Digest rows are kept (the view link re-renders them);
    a digest that may still be sent keeps its email. `digest serve` runs this daily."""
    from digest import store

    settings = _settings()
    engine = _engine(settings)
    report = store.prune(
        engine,
        settings.keep_messages_days,
        settings.keep_events_days,
        dry_run=dry_run,
        batch=batch,
    )
    if as_json:
        _print_json(report.as_json())
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {report.messages} stored emails of finished digests "
        f"({_size(report.message_bytes)}; {_kept(settings.keep_messages_days)})"
    )
    typer.echo(f"{verb} {report.events} inbound events ({_kept(settings.keep_events_days)})")
