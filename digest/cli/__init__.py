"""The `digest` command line. `base` holds the Typer app, the helpers every command
shares (settings, engine, JSON output, exit codes) and the core commands; each other
module adds one group of commands and is imported here so it registers itself."""

from digest.cli import db, subscribers, transfer  # noqa: F401  (register their commands)
from digest.cli.base import _engine, app, main

__all__ = ["_engine", "app", "main"]
