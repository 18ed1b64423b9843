"""The topic catalogue as the forms show it, and the profile text built from
"keywords + ticked topics" (and split back for the manage page).

A topic is included in a profile as a top-level `topic:NAME` term, so the stored
profile stays one string in the profile language, readable and editable anywhere.
When the matching stage offers no catalogue the forms simply have no topic list.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from digest.errors import InputError
from digest.matching import topic_named

log = logging.getLogger("digest.web")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Topic:
    name: str
    label: str
    query: str = ""
    description: str = ""


def load_catalogue() -> list[Topic]:
    """The matching stage's bundled catalogue, by name; empty if there is none."""
    try:
        from digest.matching.topics import load_catalogue as load
    except ImportError:
        return []
    try:
        raw = load()
    except (OSError, ValueError, KeyError) as exc:
        log.warning("the topic catalogue could not be read: %s", exc)
        return []
    topics = []
    for name, topic in raw.items():
        if isinstance(name, str) and _NAME_RE.match(name):
            label = str(getattr(topic, "title", "") or name.replace("-", " ").capitalize())
            topics.append(Topic(name, label, str(getattr(topic, "query", ""))))
    return sorted(topics, key=lambda t: t.label.lower())


def split_top_level(profile: str) -> list[str]:
    """Comma-separated parts outside quotes and parentheses."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(profile):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch == ",":
            parts.append(profile[start:i])
            start = i + 1
    parts.append(profile[start:])
    return [p.strip() for p in parts if p.strip()]


def compose_profile(keywords: str, topics: Sequence[str], catalogue: Sequence[Topic]) -> str:
    """Keywords plus `topic:NAME` for each ticked topic; unknown topics are an error."""
    known = {t.name for t in catalogue}
    chosen = list(dict.fromkeys(t.strip() for t in topics if t and t.strip()))
    unknown = [t for t in chosen if t not in known]
    if unknown:
        # `--topics:` names the field (`accounts.field_errors`): the API's error says
        # "topics", and the form shows it beside the topic list, not the keywords.
        raise InputError(f"--topics: unknown topic {unknown[0][:64]!r}")
    parts = [keywords.strip()] if keywords and keywords.strip() else []
    parts.extend(f"topic:{name}" for name in chosen)
    return ", ".join(parts)


def split_profile(profile: str, catalogue: Sequence[Topic]) -> tuple[str, list[str]]:
    """The reverse of compose_profile: (keywords, ticked topics) for a stored profile."""
    known = {t.name for t in catalogue}
    if "topic:" not in profile.lower():
        return profile, []
    keep, topics = [], []
    for part in split_top_level(profile):
        name = topic_named(part)  # the parser decides what a topic term is
        if name in known:
            topics.append(name)
        else:
            keep.append(part)
    return ", ".join(keep), topics
