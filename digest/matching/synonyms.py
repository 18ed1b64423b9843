"""The synonym / acronym table (`synonyms.txt`, next to this file) and its expansion.

A term written by the user becomes a set of alternative token sequences ("forms"):
`LLM` -> {llm | large language model}, `LLM reasoning` -> {llm reasoning | large
language model reasoning}. Expansion works on whole analysed words, never on
user-built patterns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product
from pathlib import Path

from digest.matching.text import stem, tokens

TABLE_PATH = Path(__file__).with_name("synonyms.txt")
MAX_FORMS = 16


@dataclass(frozen=True)
class SynonymTable:
    """Each analysed form (tuple of stems) -> all forms of its group."""

    groups: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    longest: int = 0

    @classmethod
    def parse(cls, lines: Iterable[str]) -> SynonymTable:
        groups: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            forms = [tuple(stem(w) for w in tokens(part)) for part in line.split("=")]
            group = tuple(dict.fromkeys(f for f in forms if f))
            if len(group) < 2:
                continue
            for form in group:
                merged = groups.get(form, ())
                groups[form] = tuple(dict.fromkeys(merged + group))
        longest = max((len(f) for f in groups), default=0)
        return cls(groups, longest)

    def expand(self, stems: tuple[str, ...]) -> list[tuple[str, ...]]:
        """Every way to write `stems`, replacing each leftmost-longest synonym."""
        choices: list[tuple[tuple[str, ...], ...]] = []
        i = 0
        while i < len(stems):
            for size in range(min(self.longest, len(stems) - i), 0, -1):
                group = self.groups.get(stems[i : i + size])
                if group:
                    written = stems[i : i + size]
                    choices.append((written, *(g for g in group if g != written)))
                    i += size
                    break
            else:
                choices.append((stems[i : i + 1],))
                i += 1
        out: list[tuple[str, ...]] = []
        for combo in product(*choices):
            out.append(tuple(w for part in combo for w in part))
            if len(out) >= MAX_FORMS:
                break
        return list(dict.fromkeys(out))


@lru_cache(maxsize=4)
def load_table(path: Path = TABLE_PATH) -> SynonymTable:
    return SynonymTable.parse(path.read_text(encoding="utf-8").splitlines())
