"""Build `digest/data/sample_papers.jsonl`, the bundled sample papers, from the seed
corpus with the metadata found for it on public pages.

    python tools/build_sample.py [../shared/corpus/seed_papers_enriched.jsonl]

Where the data comes from: `seed_papers_enriched.jsonl` holds real papers from the
Hugging Face Daily Papers listings, each with the arXiv id, authors, first-submission
date and Hugging Face page found for it on public pages (its `evidence*` fields name
each page). The sample keeps only papers with an arXiv id and authors, so every demo
card links to the real paper (https://arxiv.org/abs/<id>) and names its authors.
`published` is the first submission where a page states it, else the date the
Hugging Face listing showed (the seed's `date`, when it has a year).

Which papers: the earlier sample's papers (so the demo's three profiles and the
README's examples match what they matched before) that have an id and authors, then
papers that match the demo profiles' words, in corpus order, up to SIZE. The output
is deterministic: running it twice gives the same file.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "digest" / "data" / "sample_papers.jsonl"
CORPUS = REPO.parent / "shared" / "corpus" / "seed_papers_enriched.jsonl"
SIZE = 50
# Words of the demo's profiles (digest/demo.py): the papers added to fill the sample.
FILL_WORDS = ("reinforcement learning", "distillation", "speech", "robot", "audio", "alignment")


def listing_date(text: str | None) -> str | None:
    """`Aug 5, 2024` (a Hugging Face listing date) as ISO; None without a year."""
    try:
        return datetime.strptime((text or "").strip(), "%b %d, %Y").date().isoformat()
    except ValueError:
        return None


def usable(row: dict) -> bool:
    return bool(row.get("arxiv_id") and row.get("authors") and row.get("title"))


def sample_line(row: dict) -> dict:
    """One line of the sample in the `file:` source's format (README, Sources)."""
    arxiv_id = row["arxiv_id"]
    line = {
        "id": arxiv_id,
        "title": row["title"],
        "abstract": row.get("abstract") or "",
        "authors": row["authors"],
        "categories": [],
        "published": row.get("published") or listing_date(row.get("date")),
        "url": f"https://arxiv.org/abs/{arxiv_id}",
        "pdf_url": f"https://arxiv.org/pdf/{arxiv_id}",
        "hf_url": row.get("hf_url"),
        "upvotes": row.get("upvotes"),
    }
    return {k: v for k, v in line.items() if v is not None}


def choose(rows: list[dict], earlier_titles: list[str]) -> list[dict]:
    by_title = {r["title"]: r for r in rows}
    chosen: dict[str, dict] = {}
    for title in earlier_titles:
        row = by_title.get(title)
        if row and usable(row):
            chosen.setdefault(row["arxiv_id"], row)
    words = iter(FILL_WORDS * SIZE)
    while len(chosen) < SIZE:
        word = next(words, None)
        if word is None:
            break
        for row in rows:
            text = f"{row['title']} {row.get('abstract', '')}".lower()
            fits = usable(row) and row.get("published") and word in text
            if fits and row["arxiv_id"] not in chosen:
                chosen[row["arxiv_id"]] = row
                break
    return list(chosen.values())


def main(argv: list[str]) -> int:
    corpus = Path(argv[1]) if len(argv) > 1 else CORPUS
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line]
    earlier = [
        json.loads(line)["title"]
        for line in SAMPLE.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    papers = choose(rows, earlier)
    SAMPLE.write_text(
        "".join(json.dumps(sample_line(r), ensure_ascii=False) + "\n" for r in papers),
        encoding="utf-8",
    )
    print(f"wrote {len(papers)} papers to {SAMPLE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
