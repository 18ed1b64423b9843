"""The bundled topic catalogue (`topics.toml`, next to this file).

Each topic is a named query in the profile language, so a subscriber can write
`topic:diffusion-models` and get a maintained, well-tuned query instead of guessing
the vocabulary of a field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CATALOGUE_PATH = Path(__file__).with_name("topics.toml")


@dataclass(frozen=True)
class Topic:
    name: str
    title: str
    query: str


@lru_cache(maxsize=4)
def load_catalogue(path: Path = CATALOGUE_PATH) -> dict[str, Topic]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        name.lower(): Topic(name.lower(), str(body["title"]), str(body["query"]))
        for name, body in sorted(data.items())
    }
