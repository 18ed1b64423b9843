"""Paper sources, selected by `DIGEST_SOURCES` (comma-separated specs).

`sample` (the bundled papers) and `file:PATH` are always available; each other kind
lives in its own module behind `digest.sources.base.Source`.
"""

from __future__ import annotations

from pathlib import Path

from digest.config import Settings
from digest.errors import ConfigError
from digest.sources.base import FetchBatch, PaperRecord, Source
from digest.sources.file import SAMPLE_NAME, FileSource, sample_path

__all__ = ["FetchBatch", "PaperRecord", "Source", "build_sources", "parse_source_specs"]


def parse_source_specs(spec: str) -> list[str]:
    """Split `DIGEST_SOURCES` on commas, keeping `feed:` URLs whole."""
    return [part.strip() for part in spec.split(",") if part.strip()]


def build_source(spec: str, settings: Settings) -> Source:
    """One source from one spec; an unknown spec is a ConfigError naming the key."""
    kind, _, arg = spec.partition(":")
    if spec == SAMPLE_NAME:
        return FileSource(sample_path(), name=SAMPLE_NAME)
    if kind == "file" and arg:
        return FileSource(Path(arg).expanduser())
    raise ConfigError(
        f"DIGEST_SOURCES: unknown source {spec!r}; expected sample, file:PATH, "
        "huggingface, arxiv:CATEGORIES or feed:URL"
    )


def build_sources(settings: Settings, spec: str | None = None) -> list[Source]:
    specs = parse_source_specs(spec if spec is not None else settings.sources)
    if not specs:
        raise ConfigError("DIGEST_SOURCES: expected at least one source")
    return [build_source(s, settings) for s in specs]
