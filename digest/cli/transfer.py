"""`digest export`, `digest import` and `digest backup`: subscribers to and from
CSV / JSON Lines files (`digest.subscriber_files`), and a consistent copy of the
database (`store.backup_sqlite`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated

import typer

from digest.cli.base import _engine, _print_json, _progress, _settings, app, out
from digest.errors import InputError

FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="csv or jsonl (default: from the file's extension)."),
]


@app.command()
def export(
    path: Annotated[str, typer.Argument(help="The file to write, or - for stdout.")] = "-",
    fmt: FormatOpt = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing file.")
    ] = False,
) -> None:
    """Write every subscriber, every field (the profile included), as CSV or JSON
    Lines. Text cells that a spreadsheet would run as a formula get a leading '
    (import takes it off again)."""
    from digest.subscriber_files import format_of, write_export

    fmt = format_of(path, fmt if fmt is not None or path != "-" else "jsonl")
    engine = _engine(_settings())
    if path == "-":
        count = write_export(engine, sys.stdout, fmt)
    else:
        target = Path(path)
        if target.exists() and not overwrite:
            raise InputError(f"{target} exists; give --overwrite to replace it")
        partial = target.with_name(f".{target.name}.partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as stream:
                count = write_export(engine, stream, fmt)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    typer.echo(f"exported {count} subscriber(s) as {fmt}", err=True)


@contextmanager
def _opened(path: str) -> Iterator[IO[str]]:
    """The import file as text: UTF-8 (a BOM skipped, as Excel writes one), bytes that
    are not UTF-8 kept as surrogates so the row holding them is refused, not the file;
    newline="" so CRLF files and line breaks inside quoted CSV cells read right."""
    if path == "-":
        stream = open(  # noqa: SIM115  (closed below)
            sys.stdin.fileno(),
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="",
            closefd=False,
        )
    else:
        try:
            stream = open(  # noqa: SIM115
                path, encoding="utf-8-sig", errors="surrogateescape", newline=""
            )
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with stream:
        yield stream


@app.command("import")
def import_(
    path: Annotated[str, typer.Argument(help="The file to read, or - for stdin.")],
    fmt: FormatOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and report; write nothing.")
    ] = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update/--skip-existing",
            help="Addresses already stored: overwrite their fields, or leave them (default).",
        ),
    ] = False,
    confirmed: Annotated[
        bool,
        typer.Option("--confirmed", help="Mark rows that would be mailed active and confirmed."),
    ] = False,
    pending: Annotated[
        bool,
        typer.Option("--pending", help="Mark rows that would be mailed pending (unconfirmed)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Add subscribers from a CSV or JSON Lines file (the columns `digest export`
    writes; `email` is required, and a profile: `keywords`, `interest` or `likes`). A bad row is reported with its line
    number and skipped; the good rows are imported. Exit 1 when any row was refused."""
    from digest.subscriber_files import OPT_IN, ImportOptions, format_of, import_stream

    if confirmed and pending:
        raise InputError("give --confirmed or --pending, not both")
    fmt = format_of(path, fmt if fmt is not None or path != "-" else "jsonl")
    opt_in = "confirmed" if confirmed else "pending" if pending else OPT_IN[0]
    settings = _settings()
    engine = _engine(settings)
    with _opened(path) as stream, _progress() as track:
        report = import_stream(
            engine,
            settings,
            stream,
            fmt,
            ImportOptions(update=update, opt_in=opt_in, dry_run=dry_run),
            progress=track("importing", None),
        )
    if as_json:
        _print_json(report.to_json())
    else:
        verb = "would import" if dry_run else "imported"
        typer.echo(
            f"read {report.read} row(s): {verb} {report.imported}, "
            f"{'would update' if dry_run else 'updated'} {report.updated}, "
            f"skipped {report.skipped_existing} already stored"
            + ("" if update else " (--update overwrites them)")
            + f", refused {report.error_count}"
        )
        for warning in report.warnings:
            typer.echo(f"warning: {warning}", err=True)
        if report.watermarks_reset:
            typer.echo(
                f"note: {report.watermarks_reset} watermark(s) named papers this database "
                "does not have; those subscribers start afresh (DIGEST_FIRST_DIGEST_DAYS)",
                err=True,
            )
        if report.signed_up:
            typer.echo(
                f"note: {report.signed_up} address(es) of the file signed up while this "
                "import ran: one subscriber each, counted above as "
                + ("updated (from the file)" if update else "already stored (the sign-up kept)"),
                err=True,
            )
        if report.kept_status:
            typer.echo(
                f"note: {report.kept_status} stored address(es) unsubscribed or suspended "
                "kept that status (a file does not undo it; see digest reactivate)",
                err=True,
            )
        for e in report.errors[:50]:
            typer.echo(f"line {e['line']}: {e['error']}", err=True)
        if report.error_count > 50:
            typer.echo(f"... and {report.error_count - 50} more (--json lists them)", err=True)
    if report.error_count:
        raise typer.Exit(1)


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing file.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Copy the SQLite database to PATH, consistent while digest runs (SQLite's online
    backup). For PostgreSQL it prints the pg_dump command to run instead (exit 2)."""
    from digest import store

    settings = _settings()
    size = store.backup_sqlite(_engine(settings), path, overwrite=overwrite)
    if as_json:
        _print_json({"path": str(path), "bytes": size})
    else:
        out.print(f"backed up to {path} ({size} bytes)", markup=False, highlight=False)
