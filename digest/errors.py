"""Errors a user can cause, each mapped by the CLI to a clear message and an exit code."""

from __future__ import annotations


class DigestError(Exception):
    """An expected failure with a message fit for the user; exit code 2 (bad input)."""

    exit_code = 2


class ConfigError(DigestError):
    """A setting has a value the program cannot use."""


class InputError(DigestError):
    """Bad input from the user: an address, a query, a date, a file."""


class QueryError(InputError):
    """A profile query that does not parse; `position` is the 0-based offset of the fault."""

    def __init__(self, message: str, position: int = 0, query: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.query = query

    def __str__(self) -> str:
        base = f"{self.args[0]} (at position {self.position})"
        # The caret line is for a short query on one line; one holding a line break
        # or another control character would come out broken (or act on a terminal).
        if self.query and len(self.query) <= 200 and self.query.isprintable():
            return f"{base}\n  {self.query}\n  {' ' * self.position}^"
        return base


class SourceError(Exception):
    """A source could not deliver: network, HTTP status, malformed body."""
