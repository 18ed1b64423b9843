"""`digest ratings`: a subscriber's "more / less like this" votes, listed or cleared
(the manage page does the same for the subscriber)."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.base import JsonOpt, _engine, _print_json, _settings, app
from digest.errors import InputError
from digest.states import Vote


@app.command("ratings")
def ratings(
    address: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    clear: Annotated[
        bool, typer.Option("--clear", help="Forget every rating (or those of --paper).")
    ] = False,
    paper: Annotated[
        list[str] | None, typer.Option("--paper", help="With --clear: only this paper id.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a subscriber's ratings (newest first), or clear them."""
    from digest import store

    settings = _settings()
    engine = _engine(settings)
    sub = store.get_subscriber(engine, store.normalise_email(address))
    if sub is None or sub.id is None:
        raise InputError(f"no subscriber with address {address[:80]}")
    if paper and not clear:
        raise InputError("--paper: only with --clear")
    if clear:
        gone = store.clear_ratings(engine, sub.id, paper or None)
        typer.echo(f"cleared {gone} rating{'s' if gone != 1 else ''} of {sub.email}")
        return
    rows = store.list_ratings(engine, sub.id)
    if as_json:
        _print_json(
            [
                {
                    "paper_id": r.paper_id,
                    "title": r.title,
                    "vote": Vote.of_sign(r.vote),
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    if not rows:
        typer.echo(f"no ratings for {sub.email}")
    for r in rows:
        typer.echo(f"{Vote.of_sign(r.vote):4}  {r.paper_id}  {(r.title or '(not stored)')[:100]}")
