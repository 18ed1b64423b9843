"""Issue 14: ratings change the next digest's ranking in the direction asked. Three
subscribers with the same interest; one rated a protein-design paper "more like
this", one "less like this", one nothing. Through the real pipeline (SQLite file,
SMTP server on loopback): the protein papers of the next edition move up for the
first, down (or out) for the second."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from digest import pipeline, store, subscriptions
from digest.models import utcnow

INTEREST = "reward models and preference optimisation for aligning language models"
RATED = {
    "id": "2502.00001",
    "title": "Reward models for protein sequence design",
    "abstract": "Reward models trained on protein stability assays steer protein "
    "sequence design under enzyme folding constraints.",
}
NEXT = [
    {
        "id": "2502.00011",
        "title": "Reward models for aligning language models with human preferences",
        "abstract": "Preference optimisation with reward models aligns language models.",
    },
    {
        "id": "2502.00012",
        "title": "Protein sequence design with enzyme folding constraints",
        "abstract": "Stability assays guide protein sequence design; a reward model "
        "scores enzyme folding.",
    },
    {
        "id": "2502.00013",
        "title": "Preference optimisation without a reference model",
        "abstract": "Aligning language models with preference data directly.",
    },
    {
        "id": "2502.00014",
        "title": "Reward shaping for robot locomotion",
        "abstract": "Reward shaping for legged robots in simulation.",
    },
]
PROTEIN = "2502.00012"
DISLIKED = {
    "id": "2502.00002",
    "title": "Reference-free preference optimisation",
    "abstract": "Preference optimisation without a reference model aligns language "
    "models directly from preference data.",
}
REFERENCE_FREE = "2502.00013"  # like DISLIKED


def write(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def position(ids: list[str], paper: str = PROTEIN) -> float:
    return ids.index(paper) if paper in ids else float("inf")


@pytest.mark.parametrize("ranking", ["auto", "off"])  # with the model, and BM25 alone
def test_more_and_less_like_this_move_similar_papers_up_and_down(
    tmp_path, settings, engine, smtp_sink, ranking
):
    feed = tmp_path / "papers.jsonl"
    write(feed, [RATED, DISLIKED])
    settings = replace(settings, sources=f"file:{feed}", semantic=ranking)
    subs = {
        name: subscriptions.subscribe(
            engine, settings, f"{name}@example.org", None, interest=INTEREST
        )
        for name in ("up", "none", "down")
    }
    now = utcnow()
    pipeline.run_once(engine, settings, everyone=True, now=now)
    store.record_rating(engine, subs["up"].id, RATED["id"], 1)
    store.record_rating(engine, subs["down"].id, DISLIKED["id"], -1)

    write(feed, [RATED, DISLIKED, *NEXT])
    later = now + timedelta(days=1)
    report = pipeline.run_once(engine, settings, everyone=True, now=later)
    assert report.build.failed == 0
    rows = {r.subscriber_id: r for r in store.digests_for_edition(engine, later.date().isoformat())}
    got = {name: rows[sub.id].paper_ids if sub.id in rows else [] for name, sub in subs.items()}
    scores = {
        name: rows[sub.id].explanations.get(REFERENCE_FREE, {}).get("score", float("-inf"))
        for name, sub in subs.items()
    }
    # "more like this": the protein paper comes in, or moves up
    assert PROTEIN in got["up"], got
    assert position(got["up"]) < position(got["none"]), got
    # "less like this": the paper like the disliked one moves down, or out
    assert REFERENCE_FREE in got["none"], got
    assert position(got["down"], REFERENCE_FREE) >= position(got["none"], REFERENCE_FREE), got
    assert scores["down"] < scores["none"], scores
    # The language-model papers stay for everyone: a rating moves neighbours only.
    assert all("2502.00011" in ids for ids in got.values()), got
