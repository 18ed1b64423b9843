"""The source kinds `DIGEST_SOURCES` may name, each one entry of a `SourceRegistry`.

A kind is a prefix (`arxiv:`) or a bare name (`sample`), a builder, a cheap spec check
and a hint for when to fetch it. Spec parsing, the start-up check, building, the
decision whether HTTP clients are needed and the scheduler's jobs all read the
registry, so a new kind is one module plus one `SourceKind` here (or one
`register` call).

This module imports nothing from the network: builders of network kinds import
their module when called (httpx and feedparser cost every command a fifth of a
second, and most commands never fetch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Settings
from digest.sources.base import Source
from digest.sources.file import SAMPLE_NAME, FileSource, sample_path

if TYPE_CHECKING:
    from digest.sources.http import SourceClients

MAX_SPEC = 500  # SourceState.name


class FetchTiming(StrEnum):
    """When the scheduler fetches a kind of source."""

    ARXIV_ANNOUNCEMENTS = "arxiv-announcements"  # after arXiv's evening announcements
    INTERVAL = "interval"  # every DIGEST_FETCH_EVERY_MINUTES


def _no_check(arg: str) -> None:
    """The grammar (kind known, argument present) is all most kinds can check cheaply."""


# arg, settings, the shared HTTP clients (None when the kind does not need them).
Builder = Callable[[str, Settings, "SourceClients | None"], Source]


@dataclass(frozen=True)
class SourceKind:
    """One kind of source. `name` is the spec itself (`sample`) or, when
    `takes_argument`, the part before the colon (`arxiv` in `arxiv:cs.CL`)."""

    name: str
    takes_argument: bool
    build: Builder
    usage: str = ""  # how the error message lists it, e.g. "arxiv:CATEGORIES"
    check: Callable[[str], None] = _no_check  # cheap, offline: raise ValueError
    needs_http: bool = True
    timing: FetchTiming = FetchTiming.INTERVAL
    commas_in_argument: bool = False  # feed URLs may hold commas

    @property
    def prefix(self) -> str:
        """What a spec of this kind starts with."""
        return f"{self.name}:" if self.takes_argument else self.name

    def label(self) -> str:
        return self.usage or self.prefix


class SourceRegistry:
    """The known kinds, in the order error messages list them."""

    def __init__(self, kinds: tuple[SourceKind, ...] = ()) -> None:
        self._kinds: dict[str, SourceKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: SourceKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"source kind {kind.name!r} is already registered")
        self._kinds[kind.name] = kind

    def unregister(self, name: str) -> None:
        del self._kinds[name]

    @contextmanager
    def registered(self, kind: SourceKind) -> Iterator[SourceKind]:
        """`kind` known for the duration of the block (tests, plugins tried out)."""
        self.register(kind)
        try:
            yield kind
        finally:
            self.unregister(kind.name)

    def prefixes(self) -> tuple[str, ...]:
        return tuple(kind.prefix for kind in self._kinds.values())

    def kind_of(self, spec: str) -> SourceKind | None:
        """The kind `spec` names, whatever its argument; None if no kind fits."""
        name, colon, _ = spec.partition(":")
        kind = self._kinds.get(name)
        if kind is None or kind.takes_argument != bool(colon):
            return None
        return kind

    def expected(self) -> str:
        """`sample, file:PATH, ... or feed:URL`, for the unknown-source message."""
        labels = [kind.label() for kind in self._kinds.values()]
        if len(labels) < 2:
            return "".join(labels)
        return ", ".join(labels[:-1]) + " or " + labels[-1]


def _build_sample(arg: str, settings: Settings, clients: SourceClients | None) -> Source:
    return FileSource(sample_path(), name=SAMPLE_NAME)


def _build_file(arg: str, settings: Settings, clients: SourceClients | None) -> Source:
    return FileSource(Path(arg).expanduser())


# The network kinds import their module here, not at the top, for start-up cost only
# (httpx, feedparser); none of them imports this module.


def _build_huggingface(arg: str, settings: Settings, clients: SourceClients | None) -> Source:
    from digest.sources.huggingface import build_huggingface_source

    assert clients is not None  # needs_http
    return build_huggingface_source(settings, clients.web)


def _build_arxiv(arg: str, settings: Settings, clients: SourceClients | None) -> Source:
    from digest.sources.arxiv import build_arxiv_source

    assert clients is not None  # needs_http
    return build_arxiv_source(arg, settings, clients.arxiv)


def _build_feed(arg: str, settings: Settings, clients: SourceClients | None) -> Source:
    from digest.sources.feed import build_feed_source

    assert clients is not None  # needs_http
    return build_feed_source(arg.strip(), settings, clients.web)


def default_kinds() -> SourceRegistry:
    """The kinds this release ships, in the order the error message lists them."""
    return SourceRegistry(
        (
            SourceKind(SAMPLE_NAME, False, _build_sample, needs_http=False),
            SourceKind("file", True, _build_file, usage="file:PATH", needs_http=False),
            SourceKind("huggingface", False, _build_huggingface),
            SourceKind(
                "arxiv",
                True,
                _build_arxiv,
                usage="arxiv:CATEGORIES",
                timing=FetchTiming.ARXIV_ANNOUNCEMENTS,
            ),
            SourceKind("feed", True, _build_feed, usage="feed:URL", commas_in_argument=True),
        )
    )


# The registry the service reads. Every function that reads it takes a `kinds`
# argument as well, so a caller (a test) may pass its own instead.
SOURCE_KINDS = default_kinds()
