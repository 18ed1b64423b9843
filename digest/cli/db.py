"""`digest db`: the database's schema version (Alembic revisions) for operators."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.base import JsonOpt, _engine, _print_json, _settings, app
from digest.errors import InputError

db_app = typer.Typer(
    name="db",
    help="The database's schema version: show it, upgrade or downgrade it, list revisions.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app)
JsonObjOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
RevisionArg = Annotated[str, typer.Argument(help="A revision id, or head / base.")]


@db_app.command("current")
def db_current(as_json: JsonObjOpt = False) -> None:
    """The database's revision and whether it is the newest (head)."""
    from digest import store

    settings = _settings()
    engine = _engine(settings, schema=False)
    revision = store.current_revision(engine)
    known = revision is None or store.is_known_revision(revision)
    data = {
        "revision": revision,
        "head": store.HEAD,
        "at_head": revision == store.HEAD,
        "known": known,
    }
    if as_json:
        _print_json(data)
        return
    # Plain echo, here and below: a URL must not be wrapped.
    if revision == store.HEAD:
        state = "head"
    elif known:
        state = f"behind head {store.HEAD}"
    else:  # written by a newer digest: upgrading this one is the way forward
        state = f"unknown to this digest, whose head is {store.HEAD}: a newer digest wrote it"
    typer.echo(f"{revision or 'none'} ({state}): {store.shown_url(settings.database_url)}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="A revision id.")] = "head") -> None:
    """Upgrade the database to REVISION (default: head, the newest)."""
    from digest import store

    settings = _settings()
    engine = _engine(settings, schema=False, create=True)
    store.upgrade(engine, revision)
    typer.echo(f"database at {store.current_revision(engine) or 'base'}")


@db_app.command("downgrade")
def db_downgrade(
    revision: RevisionArg,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really downgrade: what it drops is lost.")
    ] = False,
) -> None:
    """Downgrade the database to REVISION (base: no tables left; their rows are lost).
    Without --yes it only says what it would do; back the database up first."""
    from digest import store

    settings = _settings()
    engine = _engine(settings, schema=False)
    if not yes:
        held = ", ".join(f"{n} {t}" for t, n in store.row_counts(engine).items() if n)
        raise InputError(
            f"downgrading to {revision[:80]!r} can drop tables and every row in them "
            f"(the database holds {held or 'no rows'}); back it up, stop every digest "
            "process using it, then run again with --yes"
        )
    store.downgrade(engine, revision)
    typer.echo(f"database at {store.current_revision(engine) or 'base'}")


@db_app.command("history")
def db_history(as_json: JsonOpt = False) -> None:
    """Every revision, newest first, with its message; marks current and head."""
    from digest import store

    settings = _settings()
    revisions = store.history(_engine(settings, schema=False))
    if as_json:
        _print_json([r.to_json() for r in revisions])
        return
    for r in revisions:
        marks = ", ".join(m for m, on in (("head", r.is_head), ("current", r.is_current)) if on)
        typer.echo(f"{r.revision}{f' ({marks})' if marks else ''}  {r.message}")
