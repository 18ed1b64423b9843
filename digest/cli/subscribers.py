"""Operator commands on subscriptions: pause, resume, reactivate, delete. Each takes
one or more addresses and goes on past a refused one; the rules (which status may
become which) live in `digest.subscriptions`, shared with nothing here but printing.

Exit 0 when every address ended in the asked-for state, 2 when any was refused
(unknown, invalid, or in a state the command does not apply to: nothing was changed
for that address, and the line says why and what would). An unknown address reads
as it does for `digest set`: `error: no subscriber with address ...`, exit 2."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.base import JsonOpt, _engine, _print_json, _settings, app
from digest.errors import InputError

if TYPE_CHECKING:  # imported by the commands, for start-up cost
    from digest.store import Engine
    from digest.subscriptions import Outcome

EmailsArg = Annotated[list[str], typer.Argument(help="One or more subscriber addresses.")]


def _each(
    emails: Iterable[str], act: Callable[[Engine, str], Outcome], as_json: bool
) -> list[Outcome]:
    engine = _engine(_settings())
    emails = _distinct(emails)
    unknown = set(_unknown(engine, emails))
    outcomes = [act(engine, e) for e in emails]
    if as_json:
        _print_json([o.to_json() for o in outcomes])
    else:
        for o in outcomes:  # plain echo: a console would wrap the long reasons
            typer.echo(_line(o, unknown), err=o.refused)
    if any(o.refused for o in outcomes):
        raise typer.Exit(2)
    return outcomes


def _distinct(emails: Iterable[str]) -> list[str]:
    """`emails` with each address once, as the store compares them (`C@X` and `c@x`
    are one subscriber): acting twice would report the second as unknown after the
    first deleted it."""
    from digest import store

    seen: set[str] = set()
    out = []
    for email in emails:
        try:
            key = store.normalise_email(email)
        except InputError:
            key = email
        if key not in seen:
            seen.add(key)
            out.append(email)
    return out


def _line(o: Outcome, unknown: set[str]) -> str:
    if o.refused and o.status is None and o.email in unknown:
        return f"error: no subscriber with address {o.email}"  # as `digest set` says it
    return f"{'refused: ' if o.refused else ''}{o.email}: {o.message}"


def _unknown(engine: Engine, emails: Iterable[str]) -> list[str]:
    """The valid addresses among `emails` that no subscriber has, normalised (an
    invalid one is refused by the command itself, with its reason)."""
    from digest import store

    found = []
    for email in emails:
        try:
            address = store.normalise_email(email)
        except InputError:
            continue
        if store.get_subscriber(engine, address) is None:
            found.append(address)
    return found


@app.command()
def pause(emails: EmailsArg, as_json: JsonOpt = False) -> None:
    """Pause active subscriptions (no digests until `digest resume`)."""
    from digest import subscriptions

    _each(emails, subscriptions.pause, as_json)


@app.command()
def resume(emails: EmailsArg, as_json: JsonOpt = False) -> None:
    """Resume paused subscriptions."""
    from digest import subscriptions

    _each(emails, subscriptions.resume, as_json)


@app.command()
def reactivate(
    emails: EmailsArg,
    unsubscribed_ok: Annotated[
        bool,
        typer.Option(
            "--unsubscribed-ok",
            help="Also bring back addresses that unsubscribed (only with their consent).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring back suspended addresses (bounces cleared) and, with --unsubscribed-ok,
    unsubscribed ones. Paused ones: use `digest resume`."""
    from digest import subscriptions

    _each(
        emails,
        lambda engine, e: subscriptions.reactivate(engine, e, unsubscribed_ok=unsubscribed_ok),
        as_json,
    )


@app.command()
def delete(
    emails: EmailsArg,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really delete: the rows cannot be brought back.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete subscribers with every digest made for them (as the web's "delete my
    data"); needs --yes. Use `digest unsubscribe` to stop mail but keep the record."""
    settings = _settings()
    if not yes:
        # An unknown address first: asking for --yes to delete nothing misleads.
        unknown = _unknown(_engine(settings), emails)
        if unknown:
            raise InputError("; ".join(f"no subscriber with address {a}" for a in unknown))
        raise InputError(
            f"deleting {len(emails)} address(es) removes them and every digest sent to "
            "them, for good (back up first: digest backup PATH); run again with --yes"
        )
    from digest.web.limits import DbRateLimiter, SignupLimits

    def delete_one(engine: Engine, email: str) -> Outcome:
        from digest import subscriptions

        outcome = subscriptions.delete(engine, email)
        if outcome.changed:  # the web's delete also forgets the address's mail budget
            SignupLimits(settings, DbRateLimiter(engine)).forget_address(outcome.email)
        return outcome

    _each(emails, delete_one, as_json)
