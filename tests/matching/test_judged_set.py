"""The judged interests bench/semantic.py scores quality on: well formed, its halves
kept apart, every judged paper found in the corpus.

The figures the issue's targets are read from mean nothing if a profile moves between
halves, a grade is mistyped or a key no longer names a corpus line (the corpus is
keyed by arXiv id, else by line number: a reordered corpus silently unjudges papers).
"""

from __future__ import annotations

import json

import pytest
from conftest import REPO

JUDGED = REPO / "bench" / "data" / "judged_interests.jsonl"
CORPUS = REPO.parent / "shared" / "corpus" / "seed_papers_enriched.jsonl"
TEST_HALF = {f"p{n}" for n in range(16, 31)}  # never tuned on


def _profiles() -> list[dict]:
    return [json.loads(line) for line in JUDGED.read_text().splitlines() if line.strip()]


def test_halves_are_apart_and_profiles_well_formed() -> None:
    profiles = _profiles()
    ids = [p["id"] for p in profiles]
    assert len(ids) == len(set(ids)), "a profile id is used twice"
    assert {p["id"] for p in profiles if p["split"] == "test"} == TEST_HALF
    assert {p["split"] for p in profiles} == {"dev", "test"}
    for p in profiles:
        assert p["interest"].strip(), p["id"]
        grades = set(p["relevant"].values())
        assert grades <= {1, 2} and 2 in grades, p["id"]


def test_every_judged_paper_is_a_corpus_line() -> None:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is not here")
    keys = set()
    for n, line in enumerate(CORPUS.read_text().splitlines()):
        keys.add(json.loads(line).get("arxiv_id") or f"line:{n}")
    for p in _profiles():
        missing = set(p["relevant"]) - keys
        assert not missing, f"{p['id']} judges papers not in the corpus: {sorted(missing)}"
