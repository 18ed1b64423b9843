"""The `digest` command line. Each command is a thin layer over `digest.pipeline` and
`digest.store`: parse arguments, call one function, print a table or JSON.

Exit codes: 0 ok, 1 finished with failures, 2 bad usage or bad input.
"""

from __future__ import annotations

import json
import sys
import webbrowser
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from digest import pipeline, store, subscriptions
from digest.config import Settings, load_settings
from digest.errors import DigestError, InputError
from digest.models import Paper, Subscriber, utcnow

app = typer.Typer(
    name="digest",
    help="Email researchers a personal daily digest of new papers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON array on stdout.")]


def _settings() -> Settings:
    return load_settings()


def _engine(settings: Settings) -> Engine:
    engine = store.make_engine(settings.database_url)
    store.init_db(engine)
    return engine


def _parse_date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{name}: expected a date as YYYY-MM-DD, got {value!r}") from None


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value else None


def paper_json(p: Paper) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": p.title,
        "abstract": p.abstract,
        "authors": p.authors,
        "categories": p.categories,
        "published": _iso(p.published),
        "url": p.url,
        "pdf_url": p.pdf_url,
        "code_url": p.code_url,
        "project_url": p.project_url,
        "hf_url": p.hf_url,
        "upvotes": p.upvotes,
        "ai_summary": p.ai_summary,
        "ai_keywords": p.ai_keywords,
        "sources": p.sources,
        "first_seen": _iso(p.first_seen),
    }


def subscriber_json(s: Subscriber) -> dict[str, Any]:
    return {
        "email": s.email,
        "status": s.status,
        "keywords": s.keywords,
        "max_papers": s.max_papers,
        "min_score": s.min_score,
        "created_at": _iso(s.created_at),
        "confirmed_at": _iso(s.confirmed_at),
        "timezone": s.timezone,
        "send_at": s.send_at,
        "frequency": s.frequency,
        "weekday": s.weekday,
        "bounces": s.bounces,
    }


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


# ---------------------------------------------------------------- commands


@app.command()
def init() -> None:
    """Create or upgrade the database (safe to run again)."""
    settings = _settings()
    _engine(settings)
    out.print(f"database ready: {settings.database_url}")


@app.command()
def subscribe(
    email: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    keywords: Annotated[str, typer.Option("--keywords", "-k", help="The profile query.")],
    max_papers: Annotated[
        int | None, typer.Option("--max-papers", help="Papers per digest.")
    ] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Relevance floor.")] = None,
) -> None:
    """Add an active subscriber with a keyword profile (no confirmation email)."""
    settings = _settings()
    sub = subscriptions.new_subscriber(
        settings, email, keywords, max_papers=max_papers, min_score=min_score
    )
    store.add_subscriber(_engine(settings), sub)
    out.print(f"subscribed {sub.email}")


@app.command()
def unsubscribe(email: Annotated[str, typer.Argument(help="The address to unsubscribe.")]) -> None:
    """Stop sending digests to an address (kept, marked unsubscribed)."""
    settings = _settings()
    address = store.normalise_email(email)
    store.update_subscriber(
        _engine(settings), address, status="unsubscribed", unsubscribed_at=utcnow()
    )
    out.print(f"unsubscribed {address}")


@app.command()
def subscribers(as_json: JsonOpt = False) -> None:
    """List subscribers."""
    rows = store.list_subscribers(_engine(_settings()))
    if as_json:
        _print_json([subscriber_json(s) for s in rows])
        return
    table = Table("email", "status", "keywords", "max", "created")
    for s in rows:
        table.add_row(s.email, s.status, s.keywords, str(s.max_papers), _iso(s.created_at) or "")
    out.print(table)


@app.command()
def papers(
    since: Annotated[
        str | None, typer.Option(help="Only papers from this date (YYYY-MM-DD).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored papers, newest first."""
    rows = store.list_papers(_engine(_settings()), _parse_date(since, "--since"), limit)
    if as_json:
        _print_json([paper_json(p) for p in rows])
        return
    table = Table("id", "published", "upvotes", "title")
    for p in rows:
        table.add_row(p.id, _iso(p.published) or "", str(p.upvotes or ""), p.title[:90])
    out.print(table)


@app.command()
def fetch(
    since: Annotated[str | None, typer.Option(help="Backfill from this date (YYYY-MM-DD).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull new papers from the configured sources (DIGEST_SOURCES)."""
    settings = _settings()
    reports = pipeline.fetch_all(_engine(settings), settings, _parse_date(since, "--since"))
    if as_json:
        _print_json([r.to_json() for r in reports])
    else:
        table = Table("source", "new", "updated", "known", "errors")
        for r in reports:
            table.add_row(r.name, str(r.new), str(r.updated), str(r.known), str(len(r.errors)))
        out.print(table)
        for r in reports:
            for e in r.errors[:20]:
                err.print(f"[yellow]{r.name}[/]: {e}", markup=True, highlight=False)
    if any(r.failed for r in reports):
        raise typer.Exit(1)


@app.command()
def run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render everything, send nothing.")
    ] = False,
    no_fetch: Annotated[bool, typer.Option("--no-fetch", help="Skip fetching sources.")] = False,
) -> None:
    """Fetch, then build, render and send today's edition to every active subscriber."""
    settings = _settings()
    engine = _engine(settings)
    report = pipeline.run_once(engine, settings, dry_run=dry_run, fetch=not no_fetch)
    _print_run(report, dry_run)
    if not report.ok:
        raise typer.Exit(1)


def _print_run(report: pipeline.RunReport, dry_run: bool) -> None:
    new = sum(r.new for r in report.fetch)
    out.print(f"fetched: {new} new papers from {len(report.fetch)} source(s)")
    for r in report.fetch:
        if r.failed:
            err.print(f"source {r.name} failed: {'; '.join(r.errors)[:300]}", highlight=False)
    b = report.build
    verb = "rendered (dry run)" if dry_run else "queued"
    out.print(f"digests {verb}: {b.built}, nothing matched: {b.empty}, already done: {b.already}")
    if not dry_run:
        out.print(f"sent: {report.send.sent}, failed: {report.send.failed}")
        for e in report.send.errors[:20]:
            err.print(f"  {e}", highlight=False)


@app.command()
def preview(
    email: Annotated[str | None, typer.Argument(help="Render for this subscriber.")] = None,
    keywords: Annotated[
        str | None, typer.Option("--keywords", "-k", help="An ad-hoc profile.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, text or eml.")] = "html",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write here, not stdout.")] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the result.")] = False,
) -> None:
    """Render the digest a subscriber or a --keywords profile would get now."""
    from digest.preview import render_preview

    if fmt not in {"html", "text", "eml"}:
        raise InputError(f"--format: expected html, text or eml, got {fmt!r}")
    settings = _settings()
    engine = _engine(settings)
    data = render_preview(engine, settings, email, keywords, fmt)
    if out_file is None and open_browser:
        out_file = Path("digest-preview." + {"html": "html", "text": "txt", "eml": "eml"}[fmt])
    if out_file:
        out_file.write_bytes(data)
        err.print(f"wrote {out_file}")
        if open_browser:
            webbrowser.open(out_file.resolve().as_uri())
    else:
        sys.stdout.buffer.write(data)


@app.command()
def serve() -> None:
    """Run the scheduler: `run` every day at DIGEST_SEND_AT in DIGEST_TIMEZONE."""
    from digest.scheduler import serve_forever

    settings = _settings()
    serve_forever(_engine(settings), settings)


@app.command()
def demo(
    outbox: Annotated[Path, typer.Option(help="Where the SMTP sink stores messages.")] = Path(
        "outbox"
    ),
) -> None:
    """Run the whole product locally: sample papers, three subscribers, a built-in SMTP
    server that stores every message under ./outbox/."""
    from digest.demo import run_demo

    summary = run_demo(outbox)
    typer.echo(summary.text())  # plain: paths must not be wrapped


def main() -> None:
    try:
        app(prog_name="digest")
    except DigestError as exc:
        # Plain write: a console would wrap a long message over several lines.
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
