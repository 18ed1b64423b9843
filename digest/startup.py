"""Loading the settings the way every entry point (CLI, web, scheduler) starts.

`digest.config` reads and checks each key and imports no stage. Two keys name things
a stage registers: `DIGEST_SOURCES` (the source kinds) and `DIGEST_TRANSPORT` (the
transports). This module sits above both and hands `load_settings` the converters
for those keys, read from the registries, so a typo in either still stops every
command at start-up with one line naming the key (exit 2), and `digest serve`
refuses to start instead of failing each fetch or send for hours.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from digest.config import Settings, load_settings, read_env_file, warn_misspelt
from digest.delivery.transports import TRANSPORTS, TransportRegistry
from digest.errors import ConfigError
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


def given_names(
    environ: Mapping[str, str] | None = None, env_file: Path | str | None = ".env"
) -> set[str]:
    """The variable names the settings are read from: the environment's and those of
    `.env` (an unreadable or malformed `.env` adds none; `load_settings` reports it)."""
    names = set(os.environ if environ is None else environ)
    if env_file is not None:
        with contextlib.suppress(ConfigError):
            names.update(read_env_file(env_file))
    return names


def warn_unknown_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | str | None = ".env",
    stream: TextIO | None = None,
) -> None:
    """Warn on stderr about each `DIGEST_*` name that is no setting ("did you mean
    DIGEST_SMTP_HOST?"). The CLI calls this once, at the start of the process."""
    warn_misspelt(given_names(environ, env_file), stream)


def warn_default_sources(
    environ: Mapping[str, str] | None = None,
    env_file: Path | str | None = ".env",
    stream: TextIO | None = None,
) -> None:
    """Commands that fetch (`fetch`, `run`, `serve`, `web`'s previews) would use the
    bundled sample papers without a word when `DIGEST_SOURCES` is unset: say so, and
    how to name real sources, in one line."""
    if "DIGEST_SOURCES" not in given_names(environ, env_file):
        (stream or sys.stderr).write(
            "warning: DIGEST_SOURCES is not set: using the bundled sample papers "
            "(set it to e.g. huggingface,arxiv:cs.CL; see config.example.env)\n"
        )
