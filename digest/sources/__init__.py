"""Paper sources, selected by `DIGEST_SOURCES` (comma-separated specs).

| spec               | module          | reads                                         |
|--------------------|-----------------|-----------------------------------------------|
| `sample`           | `file.py`       | the bundled sample papers                     |
| `file:PATH`        | `file.py`       | a JSON Lines file                             |
| `huggingface`      | `huggingface.py`| Hugging Face Daily Papers                     |
| `arxiv:CATS`       | `arxiv.py`      | arXiv's daily listing; the export API to backfill |
| `feed:URL`         | `feed.py`       | any RSS 2.0 / Atom 1.0 feed                   |

Each kind lives in its own module behind `digest.sources.base.Source`; adding one is
one file plus one line in `build_source`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Settings
from digest.errors import ConfigError
from digest.sources.base import FetchBatch, PaperRecord, Source
from digest.sources.file import SAMPLE_NAME, FileSource, sample_path

if TYPE_CHECKING:
    from digest.sources.http import SourceClients

__all__ = [
    "FetchBatch",
    "PaperRecord",
    "Source",
    "build_source",
    "build_sources",
    "parse_source_specs",
]

HUGGINGFACE = "huggingface"
MAX_SPEC = 500  # SourceState.name
_KINDS = (SAMPLE_NAME, HUGGINGFACE, "arxiv:", "feed:", "file:")


def parse_source_specs(spec: str) -> list[str]:
    """Split `DIGEST_SOURCES` on commas; a piece that starts no known kind belongs to the
    `feed:` URL before it (feed URLs may hold commas)."""
    out: list[str] = []
    for raw in spec.split(","):
        part = raw.strip()
        if out and out[-1].startswith("feed:") and not part.startswith(_KINDS):
            out[-1] += "," + raw
            continue
        if part:
            out.append(part)
    return out


def check_source_specs(spec: str) -> str:
    """The cheap checks of `DIGEST_SOURCES` (known kinds, lengths), importing nothing
    from the network: settings run it, so a typo stops every command at start-up
    instead of failing each fetch of `digest serve` for hours. `build_source` checks
    the rest (arXiv categories, feed URLs)."""
    specs = parse_source_specs(spec)
    if not specs:
        raise ValueError("expected at least one source")
    for one in specs:
        kind, _, arg = one.partition(":")
        if one not in (SAMPLE_NAME, HUGGINGFACE) and not (
            kind in ("file", "arxiv", "feed") and arg.strip()
        ):
            raise ValueError(
                f"unknown source {one[:80]!r}; expected sample, file:PATH, huggingface, "
                "arxiv:CATEGORIES or feed:URL"
            )
        if len(one) > MAX_SPEC:
            raise ValueError(f"a source of at most {MAX_SPEC} characters, got {one[:80]!r}...")
    return spec.strip()


def build_source(spec: str, settings: Settings, clients: SourceClients | None = None) -> Source:
    """One source from one spec; an unknown spec is a ConfigError naming the key.

    The network sources are imported here, not at the top: httpx and feedparser cost
    every `digest` command a fifth of a second, and most commands never fetch."""
    kind, _, arg = spec.partition(":")
    if len(spec) > MAX_SPEC:  # the spec names the source's saved state (SourceState)
        raise ConfigError(
            f"DIGEST_SOURCES: a source of at most {MAX_SPEC} characters, got {spec[:80]!r}..."
        )
    if spec == SAMPLE_NAME:
        return FileSource(sample_path(), name=SAMPLE_NAME)
    if kind == "file" and arg:
        return FileSource(Path(arg).expanduser())
    if spec != HUGGINGFACE and kind not in {"arxiv", "feed"}:
        raise ConfigError(
            f"DIGEST_SOURCES: unknown source {spec[:80]!r}; expected sample, file:PATH, "
            "huggingface, arxiv:CATEGORIES or feed:URL"
        )
    from digest.sources.http import SourceClients

    clients = clients or SourceClients(settings)
    if spec == HUGGINGFACE:
        from digest.sources.huggingface import build_huggingface_source

        return build_huggingface_source(settings, clients.web)
    if kind == "arxiv":
        from digest.sources.arxiv import build_arxiv_source

        return build_arxiv_source(arg, settings, clients.arxiv)
    from digest.sources.feed import build_feed_source

    return build_feed_source(arg.strip(), settings, clients.web)


def build_sources(settings: Settings, spec: str | None = None) -> list[Source]:
    """Every configured source, sharing one set of HTTP clients (and so one arXiv
    interval). A repeated spec is read once."""
    specs = list(dict.fromkeys(parse_source_specs(spec if spec is not None else settings.sources)))
    if not specs:
        raise ConfigError("DIGEST_SOURCES: expected at least one source")
    clients = None
    if any(not (s == SAMPLE_NAME or s.startswith("file:")) for s in specs):
        from digest.sources.http import SourceClients

        clients = SourceClients(settings)
    return [build_source(s, settings, clients) for s in specs]
