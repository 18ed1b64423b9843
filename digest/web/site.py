"""Facts about this installation that the pages state: which sources the papers
come from and when a first digest goes out. Read from the settings, so a page never
promises a source or a time the configuration does not give."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from urllib.parse import urlsplit

from digest.config import Settings
from digest.sources import parse_source_specs


def source_label(spec: str) -> str:
    """How a page names one `DIGEST_SOURCES` entry: `huggingface` -> "Hugging Face
    Daily Papers", `arxiv:cs.CL+cs.LG` -> "arXiv cs.CL and cs.LG", `feed:URL` -> the
    feed's host, `file:PATH` -> the file's name, `sample` -> "sample papers"."""
    kind, _, argument = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "huggingface":
        return "Hugging Face Daily Papers"
    if kind == "arxiv":
        return "arXiv " + join_words([c for c in argument.split("+") if c.strip()])
    if kind == "feed":
        return urlsplit(argument.strip()).hostname or "an RSS feed"
    if kind == "file":
        return PurePath(argument.strip()).name or "a paper list"
    if kind == "sample":
        return "sample papers"
    return spec


def join_words(words: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class SiteFacts:
    """What the page templates see as `site`."""

    sources: str
    send_every_minutes: int
    first_digest_days: int


def site_facts(settings: Settings) -> SiteFacts:
    labels = list(dict.fromkeys(source_label(s) for s in parse_source_specs(settings.sources)))
    return SiteFacts(
        sources=join_words(labels) or "the configured sources",
        send_every_minutes=settings.send_every_minutes,
        first_digest_days=settings.first_digest_days,
    )
