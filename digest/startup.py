"""Loading the settings the way every entry point (CLI, web, scheduler) starts.

`digest.config` reads and checks each key and imports no stage. Two keys name things
a stage registers: `DIGEST_SOURCES` (the source kinds) and `DIGEST_TRANSPORT` (the
transports). This module sits above both and hands `load_settings` the converters
for those keys, read from the registries, so a typo in either still stops every
command at start-up with one line naming the key (exit 2), and `digest serve`
refuses to start instead of failing each fetch or send for hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from digest.config import Settings, load_settings
from digest.delivery.transports import TRANSPORTS, TransportRegistry
from digest.sources import check_source_specs
from digest.sources.registry import SOURCE_KINDS, SourceRegistry


def load_checked_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | str | None = ".env",
    *,
    kinds: SourceRegistry = SOURCE_KINDS,
    transports: TransportRegistry = TRANSPORTS,
) -> Settings:
    """`config.load_settings` with `DIGEST_SOURCES` and `DIGEST_TRANSPORT` checked
    against the registries (same wording, same order of keys as every other check)."""
    return load_settings(
        environ,
        env_file,
        checks={
            "DIGEST_SOURCES": lambda value: check_source_specs(value, kinds),
            "DIGEST_TRANSPORT": transports.check_name,
        },
    )
