"""The `digest` command line. Each command is a thin layer over `digest.pipeline` and
`digest.store`: parse arguments, call one function, print a table or JSON.

Exit codes: 0 ok, 1 finished with failures, 2 bad usage or bad input, 3 `web` /
`serve` could not listen (the port is in use).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

from digest.config import Settings, check_secret, check_smtp_login
from digest.errors import ConfigError, DigestError, InputError
from digest.logs import configure_logging
from digest.startup import load_checked_settings, warn_default_sources, warn_unknown_settings
from digest.states import DigestStatus, SubscriberStatus

# Start-up cost: `digest --help`, `digest subscribe` and the other light commands import
# only what they use (tests/cli/test_cli_startup.py checks it). The stages, the store
# (SQLAlchemy) and Rich's progress bars are imported by the commands that use them;
# these names are for annotations only.
if TYPE_CHECKING:
    from digest import pipeline
    from digest.delivery.sender import SendReport
    from digest.models import Paper, Subscriber
    from digest.store import Engine

app = typer.Typer(
    name="digest",
    help="Email researchers a personal daily digest of new papers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain click help: it re-wraps docstrings and lists each command by its first sentence.
    rich_markup_mode=None,
)
# Piped or redirected (`digest subscribers > list.txt`, `| grep`), Rich would draw
# tables 80 columns wide and cut addresses and editions to "ada@exam…": off a
# terminal, the tables keep their natural width and nothing is cut. A COLUMNS
# setting still wins, as in a terminal.
PIPED_WIDTH = 10_000
# emoji=False: a stored `:smile:` (a title, an interest) prints as written.
out = Console(
    width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH, emoji=False
)
err = Console(stderr=True, emoji=False)


def _key(header: str) -> Column:
    """A table column that names the row (an address, an id): folded onto more lines
    in a narrow terminal, never cut to "ada@exam…"."""
    return Column(header, overflow="fold")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON array on stdout.")]
TimezoneOpt = Annotated[
    str | None,
    typer.Option("--timezone", help="IANA zone, e.g. Asia/Tokyo (default DIGEST_TIMEZONE)."),
]
SendAtOpt = Annotated[
    str | None, typer.Option("--send-at", help="Local send time HH:MM (default DIGEST_SEND_AT).")
]
FrequencyOpt = Annotated[
    str | None, typer.Option("--frequency", help="daily, weekly or weekdays (default daily).")
]
WeekdayOpt = Annotated[
    str | None, typer.Option("--weekday", help="For weekly: mon..sun (default mon).")
]
EmailArg = Annotated[str, typer.Argument(help="The subscriber's email address.")]
MaxPapersOpt = Annotated[int | None, typer.Option("--max-papers", help="Papers per digest.")]
MinScoreOpt = Annotated[float | None, typer.Option("--min-score", help="Relevance floor.")]


def _version(show: bool) -> None:
    """`digest --version`: the installed distribution's version (importlib.metadata)."""
    if show:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("digest")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"digest {number}")
        raise typer.Exit(0)


@app.callback()
def _main_options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Email researchers a personal daily digest of new papers."""


def _shown(text: str) -> str:
    """Text from outside (a web sign-up, a feed, a relay's answer) fit for a terminal:
    rich markup escaped, and control characters written as escapes (`\\x1b`), so a
    stored string cannot clear the screen, move the cursor or recolour what follows."""
    return escape("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))


def _settings() -> Settings:
    return load_checked_settings()


class DatabaseUnavailable(DigestError):
    """The database did not answer (a server down, a file locked): that may pass, so
    exit 1 and let cron or systemd try again, unlike a bad URL (exit 2)."""

    exit_code = 1


def _first_line(exc: BaseException) -> str:
    reason = getattr(exc, "orig", None) or exc
    return (str(reason).strip().splitlines() or [type(reason).__name__])[0][:300]


def _engine(
    settings: Settings, repair: bool = False, schema: bool = True, create: bool = False
) -> Engine:
    """The engine, with the schema created or upgraded (`repair`, for `digest init`:
    and mended, see `store.init_db`; `schema=False`, for `digest db`: left as it is);
    a database that cannot be used is one clear line naming DIGEST_DATABASE_URL
    (password masked), not a traceback. Only `init` (and `db upgrade`, `create`) may
    create a SQLite file: anywhere else a missing file means the wrong directory or
    URL, and an empty new database would mail nobody without a word."""
    from digest import store

    url = settings.database_url
    shown = store.shown_url(url)
    missing = None if repair or create else store.missing_sqlite_file(url)
    if missing is not None:
        raise ConfigError(
            f"no database at {missing}; run `digest init` first, or set DIGEST_DATABASE_URL"
        )
    try:
        engine = store.make_engine(url)
        if repair:
            store.init_db(engine)
        elif schema:
            store.ensure_schema(engine)
        else:
            store.current_revision(engine)  # fails here, in one line, if unusable
    except store.DatabaseError as exc:
        reason = _first_line(exc)
        if url.startswith("sqlite") and "locked" not in reason:
            raise ConfigError(f"DIGEST_DATABASE_URL: cannot open {shown}: {reason}") from None
        raise DatabaseUnavailable(f"DIGEST_DATABASE_URL: cannot reach {shown}: {reason}") from None
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
        "primary_category": p.primary_category,
        "published": _iso(p.published),
        "url": p.url,
        "pdf_url": p.pdf_url,
        "code_url": p.code_url,
        "project_url": p.project_url,
        "hf_url": p.hf_url,
        "upvotes": p.upvotes,
        "github_stars": p.github_stars,
        "num_comments": p.num_comments,
        "thumbnail": p.thumbnail,
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
        "interest": s.interest,
        "likes": list(s.likes or []),
        "max_papers": s.max_papers,
        "min_score": s.min_score if s.min_score is None or math.isfinite(s.min_score) else None,
        "created_at": _iso(s.created_at),
        "confirmed_at": _iso(s.confirmed_at),
        "timezone": s.timezone,
        "send_at": s.send_at,
        "frequency": s.frequency,
        "weekday": s.weekday,
        "notify_empty": s.notify_empty,
        "unsubscribed_at": _iso(s.unsubscribed_at),
        "bounces": s.bounces,
        "complaints": s.complaints,
    }


@contextmanager
def _progress() -> Iterator[pipeline.Tracker]:
    """Progress bars on stderr while a long step runs; nothing when not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )

    def track(label: str, total: int | None) -> Callable[[int], None]:
        task = bars.add_task(label, total=total)
        return lambda n: bars.advance(task, n)

    with bars:
        yield track


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


# ---------------------------------------------------------------- commands


@app.command()
def init() -> None:
    """Create or upgrade the database (safe to run again)."""
    from digest import store

    settings = _settings()
    _engine(settings, repair=True)
    out.print(f"database ready: {store.shown_url(settings.database_url)}", markup=False)


InterestOpt = Annotated[
    str | None,
    typer.Option(
        "--interest",
        "-i",
        help='What you want, in plain English ("reward models for aligning LLMs; not '
        'interested in jailbreaks"); "not interested in X" / "no X" is honoured.',
    ),
]
LikeOpt = Annotated[
    str | None,
    typer.Option(
        "--like",
        help="Example papers you liked: arXiv ids, comma-separated (2401.01234,2312.00001).",
    ),
]
LikeFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--like-file",
        help="A BibTeX or RIS file, or a Zotero export (CSV, CSL JSON, Zotero RDF): its arXiv ids, "
        "and titles of stored papers, become example papers (added to --like and, for set, to the "
        "current ones).",
        dir_okay=False,
    ),
]


def _with_file_likes(
    engine: Any, like: str | None, like_file: Path | None, current: list[str] | None = None
) -> str | None:
    """--like plus the papers found in --like-file (and, for set, the current ones)."""
    if like_file is None:
        return like
    from digest import subscriptions
    from digest.bibliography import add_likes, likes_from_file
    from digest.matching.interest import MAX_EXAMPLES

    given = subscriptions.check_likes(like) if like is not None else list(current or [])
    found, notes = likes_from_file(engine, like_file)
    likes, dropped = add_likes(given, found.paper_ids, MAX_EXAMPLES)
    if dropped:
        notes.append(f"{like_file.name}: {dropped} papers left out: at most {MAX_EXAMPLES} kept")
    for note in notes:
        err.print(note, markup=False, highlight=False, soft_wrap=True)
    return ",".join(likes)


def _warn_query(keywords: str | None) -> None:
    """The slips `digest check-query` warns about (a lower-case `and` read as a word),
    on stderr: the profile is stored as written, but it likely means something else."""
    if keywords:
        from digest.matching import query_warnings

        for warning in query_warnings(keywords):
            typer.echo(f"warning: {warning}", err=True)  # plain: a console would wrap it


@app.command()
def subscribe(
    email: EmailArg,
    keywords: Annotated[
        str | None, typer.Option("--keywords", "-k", help="The profile query.")
    ] = None,
    interest: InterestOpt = None,
    like: LikeOpt = None,
    like_file: LikeFileOpt = None,
    max_papers: MaxPapersOpt = None,
    min_score: MinScoreOpt = None,
    timezone: TimezoneOpt = None,
    send_at: SendAtOpt = None,
    frequency: FrequencyOpt = None,
    weekday: WeekdayOpt = None,
    notify_empty: Annotated[
        bool, typer.Option("--notify-empty", help="Send a short note when nothing matched.")
    ] = False,
) -> None:
    """Add an active subscriber (no confirmation email) with a keyword profile, a
    plain-English interest, example papers, or several of them."""
    from digest import subscriptions

    settings = _settings()
    engine = _engine(settings)
    sub = subscriptions.subscribe(
        engine,
        settings,
        email,
        keywords,
        interest=interest,
        likes=_with_file_likes(engine, like, like_file),
        max_papers=max_papers,
        min_score=min_score,
        timezone=timezone,
        send_at=send_at,
        frequency=frequency,
        weekday=weekday,
        notify_empty=notify_empty,
    )
    out.print(f"subscribed {sub.email}")
    _warn_query(keywords)


@app.command("set")
def set_(
    email: EmailArg,
    keywords: Annotated[
        str | None, typer.Option("--keywords", "-k", help="A new profile query.")
    ] = None,
    interest: Annotated[
        str | None,
        typer.Option("--interest", "-i", help='A new plain-English interest ("" removes it).'),
    ] = None,
    like: Annotated[
        str | None,
        typer.Option("--like", help='Example papers (arXiv ids, comma-separated; "" clears).'),
    ] = None,
    like_file: LikeFileOpt = None,
    max_papers: MaxPapersOpt = None,
    min_score: MinScoreOpt = None,
    timezone: TimezoneOpt = None,
    send_at: SendAtOpt = None,
    frequency: FrequencyOpt = None,
    weekday: WeekdayOpt = None,
    notify_empty: Annotated[
        bool | None,
        typer.Option("--notify-empty/--no-notify-empty", help="A note when nothing matched."),
    ] = None,
) -> None:
    """Change an existing subscription; only the options given change."""
    given: tuple[object, ...] = (keywords, interest, like, like_file, max_papers, min_score)
    given += (timezone, send_at, frequency, weekday, notify_empty)
    if all(v is None for v in given):
        raise InputError("nothing to change; give at least one option (see digest set --help)")
    from digest import store, subscriptions

    settings = _settings()
    engine = _engine(settings)
    current = store.get_subscriber(engine, store.normalise_email(email))
    if like_file is not None and current is None:
        raise InputError(f"no subscriber with address {store.normalise_email(email)}")
    sub = subscriptions.change(
        engine,
        settings,
        email,
        keywords=keywords,
        interest=interest,
        likes=_with_file_likes(engine, like, like_file, current.likes if current else None),
        max_papers=max_papers,
        min_score=min_score,
        timezone=timezone,
        send_at=send_at,
        frequency=frequency,
        weekday=weekday,
        notify_empty=notify_empty,
    )
    when = f"{sub.frequency}{' on ' + sub.weekday if sub.weekday else ''}"
    out.print(f"updated {sub.email}: {when} at {sub.send_at} {sub.timezone}", highlight=False)
    _warn_query(keywords)
    note = subscriptions.status_note(sub)
    if note:  # the profile changed, but nothing will be sent: say so
        typer.echo(f"note: {note}", err=True)  # plain: a console would wrap it


@app.command()
def unsubscribe(email: Annotated[str, typer.Argument(help="The address to unsubscribe.")]) -> None:
    """Stop sending digests to an address (kept, marked unsubscribed)."""
    from digest import store
    from digest.models import utcnow

    settings = _settings()
    address = store.normalise_email(email)
    store.update_subscriber(
        _engine(settings), address, status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=utcnow()
    )
    out.print(f"unsubscribed {address}")


@app.command()
def subscribers(as_json: JsonOpt = False) -> None:
    """List subscribers."""
    from digest import store

    rows = store.list_subscribers(_engine(_settings()))
    if as_json:
        _print_json([subscriber_json(s) for s in rows])
        return
    table = Table(_key("email"), "status", "keywords", "interest", "max", "schedule", "created")
    lines = []
    for s in rows:
        when = f"{s.frequency}{' ' + s.weekday if s.weekday else ''} {s.send_at} {s.timezone}"
        wants = (s.interest or "") + (f" (+{len(s.likes)} liked)" if s.likes else "")
        lines.append(
            (
                *(_shown(v) for v in (s.email, s.status, s.keywords, wants)),
                str(s.max_papers),
                _shown(when),
                _iso(s.created_at) or "",
            )
        )
    _print_fitted(table, lines, "subscribers: none yet")


@app.command()
def papers(
    since: Annotated[
        str | None, typer.Option(help="Only papers from this date (YYYY-MM-DD).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, max=10_000_000, help="At most this many.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored papers, newest first."""
    from digest import store

    rows = store.list_papers(_engine(_settings()), _parse_date(since, "--since"), limit)
    if as_json:
        _print_json([paper_json(p) for p in rows])
        return
    table = Table(_key("id"), "published", "upvotes", "title")
    lines = [
        (_shown(p.id), _iso(p.published) or "", str(p.upvotes or ""), _shown(p.title)) for p in rows
    ]
    _print_fitted(table, lines, "papers: none stored")


@app.command()
def fetch(
    since: Annotated[str | None, typer.Option(help="Backfill from this date (YYYY-MM-DD).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull new papers from the configured sources (DIGEST_SOURCES)."""
    from digest import pipeline

    settings = _settings()
    warn_default_sources()  # the table says "sample"; this says why, and what to set
    with _progress() as track:
        reports = pipeline.fetch_all(
            _engine(settings), settings, _parse_date(since, "--since"), track=track
        )
    if as_json:
        _print_json([r.to_json() for r in reports])
    else:
        table = Table("source", "new", "updated", "already known", "errors", "status")
        lines = [
            (
                _shown(r.name),
                str(r.new),
                str(r.updated),
                str(r.known),
                str(len(r.errors)),
                "[red]failed[/]" if r.failed else "ok",
            )
            for r in reports
        ]
        _print_fitted(table, lines, "sources: none configured")
        for r in reports:
            for e in r.errors[:20]:
                err.print(f"[yellow]{_shown(r.name)}[/]: {_shown(e)}", highlight=False)
    if any(r.failed for r in reports):
        raise typer.Exit(1)


@app.command()
def run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render everything, send nothing.")
    ] = False,
    no_fetch: Annotated[bool, typer.Option("--no-fetch", help="Skip fetching sources.")] = False,
    now: Annotated[
        bool, typer.Option("--now", help="Treat every active subscriber as due now.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run report as one JSON object.")
    ] = False,
) -> None:
    """Fetch, then build and send every digest that has come due (each subscriber's
    own zone, time and frequency) and has not been sent. Safe to run from cron every
    few minutes: nobody gets a digest twice, and after downtime one catch-up digest.
    Several at once (on one machine or many, against one database) share the work:
    each digest is built by exactly one of them; --json reports add up."""
    from digest import pipeline
    from digest.pipeline.stopping import stop_on_signals

    settings = _settings()
    if not dry_run:
        check_secret(settings)  # the digests' links are signed with it
        check_smtp_login(settings)  # before fetching: refused now, not after it
    if not no_fetch:
        warn_default_sources()
    configure_logging(settings.log_format, settings.log_level)  # warnings as events
    engine = _engine(settings)
    with _progress() as track, stop_on_signals(_stopping_run, insist=True) as stop:
        report = pipeline.run_once(
            engine,
            settings,
            dry_run=dry_run,
            fetch=not no_fetch,
            everyone=now,
            track=track,
            say=_say,
            stop=stop.event,
        )
    if stop.received is not None and not report.send.stopped:
        report.send.stopped = (
            f"{stop.received.name}: the sends in flight were recorded; the rest goes out "
            "with the next run"
        )
    if as_json:
        _print_json(report.to_json())
    else:
        _print_run(report, dry_run)
    if stop.received == signal.SIGINT:
        raise typer.Exit(130)  # after the report: the shell's code for Ctrl-C
    if not report.ok or stop.received is not None:
        raise typer.Exit(1)


def _stopping_run(sig: signal.Signals) -> None:
    """SIGTERM (systemd or docker stopping a `digest run`) or Ctrl-C ends the run as a
    worker's does: no more claiming, the chunks and sends in flight finish and are
    recorded, the rest stays queued, and the report is printed. Python's defaults
    would end the process mid-send, the outcome of the message in flight unknown
    (sent again by the next run)."""
    _say(
        f"{sig.name}: finishing the digests being built and the sends in flight; "
        "the rest goes out with the next run (again to abandon them)"
    )


def _print_run(report: pipeline.RunReport, dry_run: bool) -> None:
    new = sum(r.new for r in report.fetch)
    out.print(f"fetched: {new} new papers from {len(report.fetch)} source(s)")
    for r in report.fetch:
        if r.failed:
            err.print(
                f"source {r.name} failed: {'; '.join(r.errors)[:300]}",
                highlight=False,
                markup=False,
            )
    b = report.build
    verb = "rendered (dry run)" if dry_run else "queued"
    out.print(f"digests {verb}: {b.built}, nothing matched: {b.empty}, already done: {b.already}")
    if b.failed:
        err.print(f"digests that could not be built: {b.failed}", highlight=False)
        for e in b.errors[:20]:
            err.print(f"  {_shown(e)}", highlight=False)
    if b.nothing_new or report.not_due:
        out.print(f"'nothing new' notes: {b.nothing_new}, not due yet: {report.not_due}")
    if b.broken:
        err.print(f"building stopped: {b.broken}", highlight=False, markup=False, soft_wrap=True)
    if not dry_run:
        _print_send(report.send)


def _say(text: str) -> None:
    """What sending waits for, on stderr as it happens (never a silent wait)."""
    err.print(text, highlight=False, markup=False, soft_wrap=True)


def _print_send(send: SendReport) -> None:
    out.print(
        f"sent: {send.sent}, failed: {send.failed} (bounced: {send.bounced}, "
        f"gave up: {send.gave_up}, retrying later: {send.deferred})",
        highlight=False,
    )
    if send.suspended:
        out.print(f"subscribers suspended after too many bounces: {send.suspended}")
    if send.not_sent:
        out.print(
            f"not sent: {send.not_sent} (the subscriber unsubscribed, paused or was "
            "suspended or deleted after the digest was queued)"
        )
    if send.stopped:
        err.print(f"stopped early: {send.stopped}", highlight=False, markup=False, soft_wrap=True)
    for e in send.errors[:20]:
        err.print(f"  {e}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Per edition, how many digests are pending / sent / retrying / failed / bounced,
    and the last errors."""
    # Imported here for start-up cost only (APScheduler); the scheduler imports no CLI.
    from digest.scheduler import status_report
    from digest.semantic import ranking_status

    settings = _settings()
    data = status_report(_engine(settings), settings)
    data["ranking"] = ranking_status(settings)
    if as_json:
        _print_json(data)
        return
    _print_delivery_status(data)
    _print_schedule_status(data)
    r = data["ranking"]
    out.print(f"interest ranking: {r['ranking']} ({r['reason']})", markup=False, highlight=False)


def _print_fitted(table: Table, rows: Sequence[Sequence[str]], none: str) -> None:
    """`table` (filled with `rows`), or, in a terminal too narrow for it without
    cutting words (headers cut to "pe…", times to "2026-11-29T23…"), one paragraph
    per row: `first value: header=value header=value ...`, wrapped between pairs.
    `none` is said when there are no rows then (an empty table shows its headers)."""
    for row in rows:
        table.add_row(*row)
    # measured as if unbounded: a measurement is clamped to the width it is given
    needs = Measurement.get(out, out.options.update_width(PIPED_WIDTH), table).minimum
    if needs <= out.width:
        out.print(table)
        return
    headers = [str(c.header).replace(" ", "_") for c in table.columns]
    for first, *rest in rows:
        # Each cell is markup of its own (`_shown` escaped it): read one by one, then
        # joined as text. Joined first, `x [/` ending one value and `]` starting the
        # next made a tag of the two (a MarkupError, or the rest coloured).
        pairs = [
            Text(f"{h}=") + Text.from_markup(v, emoji=False)
            for h, v in zip(headers[1:], rest, strict=True)
            if v
        ]
        line = Text.from_markup(first, emoji=False) + ": " + Text(" ").join(pairs)
        out.print(line, highlight=False)
    if not rows:
        out.print(none, highlight=False)


def _print_schedule_status(data: dict[str, Any]) -> None:
    rows = []
    for s in data.get("sources", []):
        counts = s.get("last_counts") or {}
        rows.append(
            (
                _shown(s["source"]),
                s["last_fetch_at"] or "never",
                s["last_status"] or "",
                str(counts.get("new", "")),
                str(counts.get("updated", "")),
                _shown((s["last_error"] or "")[:80]),
            )
        )
    columns = ("source", "last fetch", "status", "new", "updated", "error")
    _print_fitted(Table(*columns), rows, "sources: none fetched yet")
    _print_scheduler(data.get("scheduler") or {}, data.get("next_runs", []))
    for d in data.get("next_digests", [])[:5]:
        out.print(f"next digest: {d['email']} at {d['at']} ({d['edition']})", highlight=False)
    last = data.get("last_edition")
    if last:
        counts = ", ".join(f"{k} {v}" for k, v in last.items() if k != "edition" and v)
        out.print(f"last edition {last['edition']}: {counts}", highlight=False, markup=False)


def _print_scheduler(state: dict[str, Any], next_runs: list[dict[str, Any]]) -> None:
    """The truth about the scheduler: none ever ran, or when it was last alive and
    its stored next runs (flagged when overdue, i.e. it is not running now)."""
    if not state.get("has_run"):
        out.print(
            "scheduler: no scheduler has run (start `digest serve`, or call `digest run` "
            "from cron); nothing is fetched or sent on its own",
            highlight=False,
            markup=False,
        )
        return
    alive = state.get("last_alive_at")
    line = f"scheduler: last alive at {alive}" if alive else "scheduler: has run"
    if state.get("overdue"):
        line += "; its runs are overdue, so it is not running now"
    out.print(line, highlight=False, markup=False)
    for job in next_runs:
        out.print(f"next {job['job']}: {job['next_run_at']}", highlight=False)


def _print_delivery_status(data: dict[str, Any]) -> None:
    table = Table(Column("edition", no_wrap=True, min_width=10), *(s.value for s in DigestStatus))
    rows = [(e["edition"], *(str(e[s]) for s in DigestStatus)) for e in data.get("editions", [])]
    _print_fitted(table, rows, "editions: none yet")
    if data.get("suspended_subscribers"):
        out.print(f"suspended subscribers: {data['suspended_subscribers']}")
    errors = data.get("last_errors", [])
    if errors:
        out.print("last errors:")
        for e in errors:
            out.print(
                f"  {e['edition']} {e['recipient']} [{e['status']}, {e['attempts']} attempt(s)]: "
                f"{e['error']}",
                highlight=False,
                markup=False,
            )


@app.command()
def retry(
    edition: Annotated[
        str | None, typer.Option("--edition", help="Only this edition (YYYY-MM-DD).")
    ] = None,
    no_send: Annotated[
        bool, typer.Option("--no-send", help="Only queue them; the next run sends.")
    ] = False,
) -> None:
    """Push failed digests back into the outbox (with a fresh retry schedule), make
    digests waiting to retry due now, and send them at once."""
    from digest import pipeline

    if edition is not None:
        _parse_date(edition, "--edition")
    settings = _settings()
    if not no_send:
        check_smtp_login(settings)
    pushed, send = pipeline.retry_failed(
        _engine(settings), settings, edition, send=not no_send, say=_say
    )
    out.print(f"pushed back to the outbox: {pushed}")
    if not no_send:
        _print_send(send)
        if send.failed:
            raise typer.Exit(1)


@app.command()
def preview(
    email: Annotated[str | None, typer.Argument(help="Render for this subscriber.")] = None,
    keywords: Annotated[
        str | None, typer.Option("--keywords", "-k", help="An ad-hoc profile.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, text or eml.")] = "html",
    on: Annotated[
        str | None, typer.Option("--date", help="Papers from this day (YYYY-MM-DD).")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write here, not stdout.")] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the result.")] = False,
    serve_it: Annotated[
        bool, typer.Option("--serve", help="Serve on localhost; re-render on template edits.")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --serve (0: any free).")] = 8025,
    send_to: Annotated[
        str | None, typer.Option("--send-to", help="Send it as a test email to this address.")
    ] = None,
) -> None:
    """Render the digest a subscriber or a --keywords profile would get now."""
    from digest.preview import (
        PreviewRequest,
        PreviewServer,
        render_preview,
        send_test,
        templates_stamp,
    )

    if fmt not in {"html", "text", "eml"}:
        raise InputError(f"--format: expected html, text or eml, got {fmt!r}")
    if not 0 <= port <= 65535:
        raise InputError(f"--port: expected 0-65535, got {port}")
    day = _parse_date(on, "--date")
    settings = _settings()
    if send_to:
        check_smtp_login(settings)
    engine = _engine(settings)
    if send_to:
        reply = send_test(engine, settings, PreviewRequest(email, keywords, day), send_to)
        err.print(f"sent a test digest to {send_to}: {reply}", highlight=False, markup=False)
        return
    if serve_it:
        render_preview(engine, settings, email, keywords, "html", day)  # bad input: exit 2 now
        server = PreviewServer(
            lambda f: render_preview(engine, settings, email, keywords, f, day),
            lambda: templates_stamp(settings),
            port,
        )
        err.print(f"serving the preview on {server.url}", highlight=False, soft_wrap=True)
        err.print(
            f"text: {server.url}text, eml: {server.url}eml; edit a template and the page "
            "reloads; Ctrl-C stops",
            highlight=False,
            markup=False,
        )
        if open_browser:
            webbrowser.open(server.url)
        server.serve_forever()
        return
    data = render_preview(engine, settings, email, keywords, fmt, day)
    if out_file is None and open_browser:
        out_file = Path("digest-preview." + {"html": "html", "text": "txt", "eml": "eml"}[fmt])
    if out_file:
        try:
            out_file.write_bytes(data)
        except OSError as exc:
            raise InputError(f"--out: cannot write {out_file}: {exc.strerror}") from None
        err.print(f"wrote {out_file}", markup=False, highlight=False)
        if open_browser:
            webbrowser.open(out_file.resolve().as_uri())
    else:
        sys.stdout.buffer.write(data)


HostOpt = Annotated[
    str | None, typer.Option("--host", help="Listen address (default DIGEST_HTTP_HOST).")
]
PortOpt = Annotated[
    int | None,
    typer.Option("--port", min=1, max=65535, help="Listen port (default DIGEST_HTTP_PORT)."),
]


# A leading `-` excludes a term (`-survey`): let such a query through as the argument.
@app.command("check-query", context_settings={"ignore_unknown_options": True})
def check_query(
    query: Annotated[
        str | None,
        typer.Argument(
            help="A profile in the profile language (optional with --interest / --like)."
        ),
    ] = None,
    interest: InterestOpt = None,
    like: LikeOpt = None,
    since: Annotated[
        str | None, typer.Option(help="Papers from this date (YYYY-MM-DD); default a week ago.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the matched papers as one JSON array.")
    ] = False,
) -> None:
    """Explain how a profile (a query, a plain-English interest, example papers, or
    several) is understood and what it would have matched among the stored papers, in
    rank order. An invalid query exits 2 with the error and its position.
    Likely slips (a lower-case `and` read as a word) are warned about: under --json as
    `{"warnings": [...]}` on stderr, so stdout stays the array of matches."""
    from datetime import timedelta

    from digest import matching, semantic, store, subscriptions
    from digest.models import utcnow

    wants = subscriptions.check_interest(interest)
    examples = subscriptions.check_likes(like)
    if query is None and not wants and not examples:
        raise InputError("give a query, --interest or --like (see digest check-query --help)")
    profile = matching.profile_from_input(query, interest=wants, liked=examples)
    warnings = matching.query_warnings(query) if query else []
    settings = _settings()
    engine = _engine(settings)
    day = _parse_date(since, "--since") or (utcnow().date() - timedelta(days=7))
    rows = store.list_papers(engine, day)
    # every paper it would select, in rank order
    every = profile.with_limits(max(len(rows), 1))
    papers = semantic.paper_set(engine, settings, rows, [every])
    matches = matching.rank({0: every}, papers, matching.Weights.from_settings(settings))[0]
    by_id = {p.id: p for p in rows}
    if as_json:
        _print_json(
            [
                {
                    "id": m.paper_id,
                    "title": by_id[m.paper_id].title,
                    "score": m.score,
                    "explanation": m.why(),
                    "hits": m.to_json()["hits"],
                }
                for m in matches
            ]
        )
        if warnings:
            sys.stderr.write(json.dumps({"warnings": warnings}, ensure_ascii=False) + "\n")
        return
    typer.echo(f"understood as: {profile.describe()}")
    if wants or examples:
        ranking = semantic.ranking_status(settings)
        typer.echo(f"ranking: {ranking['ranking']} ({ranking['reason']})")
    for warning in warnings:
        typer.echo(f"warning: {warning}")
    typer.echo(f"matched {len(matches)} of {len(rows)} papers since {day.isoformat()}")
    for rank, m in enumerate(matches, 1):
        title = " ".join(by_id[m.paper_id].title.split())[:90]
        why = m.why()  # empty for `*`: no blank line under the paper
        typer.echo(
            f"{rank:3}. {m.score:8.3f}  {m.paper_id}  {title}" + (f"\n       {why}" if why else "")
        )


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the web app and the scheduler: fetch when sources publish, send digests as
    they come due; SIGTERM lets in-flight requests and sends finish."""
    # Imported here for start-up cost only (FastAPI, uvicorn); the web imports no CLI.
    from digest.web.server import run_web

    settings = _settings()
    check_smtp_login(settings)  # digests and confirmation mails: refused at start
    warn_default_sources()
    raise typer.Exit(run_web(_engine(settings), settings, host, port, with_scheduler=True))


@app.command()
def web(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the web app alone (sign-up, manage and unsubscribe pages, JSON API)."""
    # Imported here for start-up cost only (FastAPI, uvicorn); the web imports no CLI.
    from digest.web.server import run_web

    settings = _settings()
    check_smtp_login(settings)  # confirmation mails: refused at start, not per sign-up
    warn_default_sources()  # the live preview shows the papers a `digest fetch` stored
    raise typer.Exit(run_web(_engine(settings), settings, host, port))


@app.command()
def demo(
    outbox: Annotated[Path, typer.Option(help="Where the SMTP sink stores messages.")] = Path(
        "outbox"
    ),
) -> None:
    """Run the whole product locally: sample papers, three subscribers, a built-in SMTP
    server that stores every message under ./outbox/."""
    # Imported here for start-up cost only (the SMTP sink); the demo imports no CLI.
    from digest.demo import run_demo

    summary = run_demo(outbox)
    typer.echo(summary.text())  # plain: paths must not be wrapped


def _database_errors() -> tuple[type[Exception], ...]:
    """The store's DatabaseError, once the store is imported: a command that never
    imported it (`--help`, `--version`) cannot have raised one."""
    engine = sys.modules.get("digest.store.engine")
    return (engine.DatabaseError,) if engine is not None else ()


def main() -> None:
    warn_unknown_settings()  # here: once per process, whatever the command
    try:
        app(prog_name="digest")
    except DigestError as exc:
        # Plain write: a console would wrap a long message over several lines.
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except _database_errors() as exc:
        # The database failed mid-command (locked too long, disk full, server gone):
        # nothing was half-written (each write is one transaction); say so in one line.
        sys.stderr.write(f"error: database: {_first_line(exc)}\n")
        sys.exit(1)
    except OSError as exc:
        # A folder or file the system refused (DIGEST_OUTBOX_DIR, a full disk, ...).
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"error: {where}{exc.strerror or exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
