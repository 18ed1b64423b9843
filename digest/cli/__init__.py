"""The `digest` command line. `base` holds the Typer app, the helpers every command
shares (settings, engine, JSON output, exit codes) and the core commands; each other
module adds one group of commands and is imported here so it registers itself."""

from digest.cli import (
    db,  # noqa: F401  (registers `digest db ...`)
    inbound,  # noqa: F401  (registers `digest inbound`)
    prune,  # noqa: F401  (registers `digest prune`)
    ratings,  # noqa: F401  (registers `digest ratings`)
    subscribers,  # noqa: F401  (registers pause, resume, reactivate, delete)
    transfer,  # noqa: F401  (registers export, import, backup)
    worker,  # noqa: F401  (registers `digest worker`)
)
from digest.cli.base import _engine, app, main

__all__ = ["_engine", "app", "main"]
