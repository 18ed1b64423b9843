"""Paper sources, selected by `DIGEST_SOURCES` (comma-separated specs).

| spec               | module          | reads                                         |
|--------------------|-----------------|-----------------------------------------------|
| `sample`           | `file.py`       | the bundled sample papers                     |
| `file:PATH`        | `file.py`       | a JSON Lines file                             |
| `huggingface`      | `huggingface.py`| Hugging Face Daily Papers                     |
| `arxiv:CATS`       | `arxiv.py`      | arXiv's daily listing; the export API to backfill |
| `feed:URL`         | `feed.py`       | any RSS 2.0 / Atom 1.0 feed                   |

Each kind lives in its own module behind `digest.sources.base.Source`; adding one is
one file plus one `SourceKind` in `digest.sources.registry`, which everything here
(and the scheduler's jobs) reads.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from digest.config import Settings
from digest.errors import ConfigError
from digest.sources.base import FetchBatch, PaperRecord, Source
from digest.sources.registry import MAX_SPEC, SOURCE_KINDS, SourceRegistry

if TYPE_CHECKING:
    from digest.sources.http import SourceClients

__all__ = [
    "FetchBatch",
    "PaperRecord",
    "Source",
    "build_source",
    "build_sources",
    "check_source_specs",
    "parse_source_specs",
]


def parse_source_specs(spec: str, kinds: SourceRegistry = SOURCE_KINDS) -> list[str]:
    """Split `DIGEST_SOURCES` on commas; a piece that starts no known kind belongs to the
    spec before it when that kind's argument may hold commas (feed URLs)."""
    prefixes = kinds.prefixes()
    out: list[str] = []
    for raw in spec.split(","):
        part = raw.strip()
        if out and not part.startswith(prefixes):
            previous = kinds.kind_of(out[-1])
            if previous is not None and previous.commas_in_argument:
                out[-1] += "," + raw
                continue
        if part:
            out.append(part)
    return out


def check_source_specs(spec: str, kinds: SourceRegistry = SOURCE_KINDS) -> str:
    """The cheap checks of `DIGEST_SOURCES` (known kinds, lengths, each kind's own
    offline check), importing nothing from the network: the entry points run it when
    they load the settings (`digest.startup`), so a typo stops every command at
    start-up instead of failing each fetch of `digest serve` for hours.
    `build_source` checks the rest (arXiv categories, feed URLs)."""
    specs = parse_source_specs(spec, kinds)
    if not specs:
        raise ValueError("expected at least one source")
    for one in specs:
        kind = kinds.kind_of(one)
        arg = one.partition(":")[2]
        if kind is None or (kind.takes_argument and not arg.strip()):
            raise ValueError(f"unknown source {one[:80]!r}; expected {kinds.expected()}")
        if len(one) > MAX_SPEC:
            raise ValueError(f"a source of at most {MAX_SPEC} characters, got {one[:80]!r}...")
        kind.check(arg)
    return spec.strip()


def build_source(
    spec: str,
    settings: Settings,
    clients: SourceClients | None = None,
    kinds: SourceRegistry = SOURCE_KINDS,
) -> Source:
    """One source from one spec; an unknown spec is a ConfigError naming the key."""
    if len(spec) > MAX_SPEC:  # the spec names the source's saved state (SourceState)
        raise ConfigError(
            f"DIGEST_SOURCES: a source of at most {MAX_SPEC} characters, got {spec[:80]!r}..."
        )
    kind = kinds.kind_of(spec)
    arg = spec.partition(":")[2]
    if kind is None or (kind.takes_argument and not arg):
        raise ConfigError(
            f"DIGEST_SOURCES: unknown source {spec[:80]!r}; expected {kinds.expected()}"
        )
    if kind.needs_http and clients is None:
        clients = _clients(settings)
    return kind.build(arg, settings, clients if kind.needs_http else None)


def build_sources(
    settings: Settings,
    spec: str | None = None,
    kinds: SourceRegistry = SOURCE_KINDS,
    stop: threading.Event | None = None,
) -> list[Source]:
    """Every configured source, sharing one set of HTTP clients (and so one arXiv
    interval). A repeated spec is read once. Setting `stop` (the service shutting down)
    ends their fetches at the next chunk or wait."""
    specs = list(
        dict.fromkeys(parse_source_specs(spec if spec is not None else settings.sources, kinds))
    )
    if not specs:
        raise ConfigError("DIGEST_SOURCES: expected at least one source")
    clients = None
    if any(kind is None or kind.needs_http for kind in map(kinds.kind_of, specs)):
        clients = _clients(settings, stop)
    return [build_source(s, settings, clients, kinds) for s in specs]


def _clients(settings: Settings, stop: threading.Event | None = None) -> SourceClients:
    # Imported here for start-up cost only (httpx): most commands never fetch.
    from digest.sources.http import SourceClients

    return SourceClients(settings, stop)
