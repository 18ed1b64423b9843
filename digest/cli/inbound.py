"""`digest inbound`: read one message from stdin (a Postfix `pipe` transport, an
alias `|digest inbound`, procmail) and act on it: a mailed unsubscribe, a bounce, a
complaint; anything else is logged and left alone.

Exit codes follow sysexits(3), as MTAs read them: 0 the message was handled or
deliberately ignored (never a failure for what a message contains: a stranger's
junk must not bounce back); 75 (EX_TEMPFAIL) it could not be handled now (the
database locked or down, no database, a bad setting): the MTA keeps it and retries,
so nothing is lost while the operator fixes it; an unexpected error is 75 too, never
a traceback and exit 1. Bad command-line usage is 2.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from digest.cli.base import _engine, _first_line, _print_json, _settings, app
from digest.config import check_secret
from digest.errors import DigestError
from digest.logs import configure_logging

EX_TEMPFAIL = 75


def _tempfail(message: str) -> typer.Exit:
    sys.stderr.write(f"error: {message}; exit {EX_TEMPFAIL} so the mail server retries\n")
    return typer.Exit(EX_TEMPFAIL)


@app.command()
def inbound(
    sender: Annotated[
        str | None,
        typer.Option("--sender", help="The envelope sender (Postfix pipe: ${sender})."),
    ] = None,
    recipient: Annotated[
        str | None,
        typer.Option(
            "--recipient",
            help="The envelope recipient (Postfix pipe: ${original_recipient}); "
            "else X-Original-To, Delivered-To and To are read.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False,
) -> None:
    """Read one email on stdin and act on it: an unsubscribe sent to the
    List-Unsubscribe address, a bounce (DSN) or a complaint (ARF) for a digest.
    Anything else is logged and left alone. Exit 0 when handled or ignored, 75 when
    it could not be handled now (the mail server retries)."""
    from digest import store
    from digest.inbound import handle, read_capped

    # Read (and drain) first: the MTA must never see a broken pipe, whatever follows.
    data, total = read_capped(sys.stdin.buffer)
    try:
        settings = _settings()
        check_secret(settings)  # the tokens it accepts are signed with it
        configure_logging(settings.log_format, settings.log_level)
        engine = _engine(settings)
        result = handle(engine, settings, data, total, recipient, sender)
    except DigestError as exc:
        raise _tempfail(str(exc)) from None
    except store.DatabaseError as exc:
        raise _tempfail(f"database: {_first_line(exc)}") from None
    except Exception as exc:  # a bug of ours: any other exit (1) makes the MTA bounce
        # the message back to its sender, a stranger's forged address (backscatter).
        raise _tempfail(f"unexpected {type(exc).__name__}: {_first_line(exc)}") from None
    if as_json:
        _print_json(result.to_json())
        return
    who = f" {result.subscriber}" if result.subscriber else ""
    state = f" (now {result.status}, bounces {result.bounces})" if result.subscriber else ""
    typer.echo(f"{result.action}{who}{state}: {result.reason}")
