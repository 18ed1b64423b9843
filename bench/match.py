"""Benchmark: N realistic profiles against M papers, index vs naive.

Profiles draw their words from the vocabulary of ../shared/corpus/seed_papers.jsonl
with a Zipf distribution (the popular words of a field are the ones people follow),
and mix in phrases, prefixes, topics, NOT clauses, author and category filters.
Papers are recombined from the seed corpus with synthetic authors, categories,
keywords and upvotes. The index runs on all profiles; the naive evaluator runs on a
sample, must give identical results there, and its time is scaled to N.

    .venv/bin/python bench/match.py --profiles 100000 --papers 1000

The last line is `RESULT profiles=N papers=M seconds=S naive_ratio=R rss_mib=X`, where
seconds is one edition (match_all with profiles already compiled, as in the pipeline).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.matching import Limits, Weights, compile_profile, match_all  # noqa: E402
from digest.matching.naive import match_all_naive  # noqa: E402
from digest.matching.text import tokens  # noqa: E402
from digest.matching.topics import load_catalogue  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "seed_papers.jsonl"
STOP = set(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "or",
        "in",
        "on",
        "for",
        "to",
        "with",
        "we",
        "our",
        "is",
        "are",
        "by",
        "from",
        "as",
        "that",
        "this",
        "at",
        "be",
        "it",
        "its",
        "which",
        "these",
        "can",
        "using",
        "based",
        "via",
        "into",
        "such",
        "than",
        "their",
        "has",
        "have",
        "not",
        "also",
        "both",
        "more",
        "while",
        "when",
        "how",
        "show",
        "shows",
        "shown",
        "results",
        "paper",
        "propose",
        "proposed",
        "new",
        "two",
        "one",
        "used",
        "use",
        "however",
        "across",
        "between",
        "over",
        "they",
        "them",
        "may",
        "been",
        "further",
        "each",
        "other",
        "most",
        "only",
    ]
)
CATEGORIES = [
    "cs.CL",
    "cs.LG",
    "cs.CV",
    "cs.AI",
    "cs.RO",
    "cs.SD",
    "eess.AS",
    "cs.IR",
    "cs.CR",
    "cs.NE",
    "stat.ML",
    "cs.HC",
    "cs.MA",
    "cs.SE",
    "q-bio.QM",
    "physics.comp-ph",
    "math.OC",
    "eess.IV",
    "cs.DC",
    "cs.GR",
]
FIRST = [
    "Wei",
    "Yann",
    "Anna",
    "Li",
    "Maria",
    "Chen",
    "Jun",
    "Sara",
    "Omar",
    "Ivan",
    "Lena",
    "Hiro",
    "Priya",
    "Tom",
    "Ana",
    "Kai",
    "Noor",
    "Emil",
]
LAST = [
    "Zhang",
    "Wang",
    "LeCun",
    "Smith",
    "Garcia",
    "Müller",
    "Kim",
    "Nguyen",
    "Rossi",
    "Patel",
    "Sato",
    "Novak",
    "Silva",
    "Cohen",
    "Ali",
    "Berg",
]


@dataclass
class BenchPaper:
    id: str
    title: str
    abstract: str
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    ai_keywords: list[str] = field(default_factory=list)
    upvotes: int | None = None
    published: object = None
    first_seen: datetime | None = None


def zipf_pick(rng: random.Random, items: list, s: float = 1.1):
    weights = [1.0 / (r + 1) ** s for r in range(len(items))]
    return lambda k=1: rng.choices(items, weights=weights, k=k)


def load_corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]


def make_papers(seed: list[dict], m: int, rng: random.Random) -> list[BenchPaper]:
    sentences = [s.strip() for d in seed for s in d["abstract"].split(". ") if s.strip()]
    authors = [f"{f} {last}" for f in FIRST for last in LAST]
    author_pick = zipf_pick(rng, authors, 0.8)
    cat_pick = zipf_pick(rng, CATEGORIES, 1.0)
    now = datetime(2026, 11, 25, 6, tzinfo=UTC)
    out = []
    for i in range(m):
        doc = seed[i % len(seed)]
        extra = rng.sample(sentences, 3)
        abstract = doc["abstract"] if i < len(seed) else ". ".join([*extra, doc["abstract"][:600]])
        words = [w for w in tokens(abstract) if w not in STOP and len(w) > 3]
        keywords = [
            " ".join(words[j : j + 2]) for j in rng.sample(range(max(len(words) - 1, 1)), 3)
        ]
        out.append(
            BenchPaper(
                id=f"2511.{i:05d}",
                title=doc["title"],
                abstract=abstract,
                authors=list(dict.fromkeys(author_pick(rng.randint(1, 8)))),
                categories=list(dict.fromkeys(cat_pick(rng.randint(1, 3)))),
                ai_keywords=keywords if words else [],
                upvotes=int(rng.paretovariate(1.2)) - 1 if rng.random() < 0.6 else None,
                first_seen=now - timedelta(hours=rng.randint(0, 72)),
            )
        )
    return out


def make_profiles(seed: list[dict], n: int, rng: random.Random) -> list[tuple[str, Limits]]:
    counts: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for d in seed:
        words = [w for w in tokens(d["title"] + " " + d["abstract"])]
        counts.update(w for w in words if w not in STOP and len(w) > 2 and not w.isdigit())
        bigrams.update(
            f"{a} {b}"
            for a, b in zip(words, words[1:], strict=False)
            if a not in STOP and b not in STOP and len(a) > 2 and len(b) > 2
        )
    vocab = [w for w, _ in counts.most_common()]
    phrases = [p for p, c in bigrams.most_common(3000) if c > 1]
    word = zipf_pick(rng, vocab)
    phrase = zipf_pick(rng, phrases)
    topics = list(load_catalogue())
    authors = [f"{f} {last}" for f in FIRST for last in LAST]

    def term() -> str:
        r = rng.random()
        if r < 0.25:
            return f'"{phrase()[0]}"'
        w = word()[0]
        if r < 0.35 and len(w) > 5:
            return w[: rng.randint(4, len(w) - 1)] + "*"
        return w

    def listing(k: int) -> str:
        return ", ".join(term() for _ in range(k))

    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.40:
            q = listing(rng.randint(2, 6))
        elif r < 0.55:
            q = ", ".join(f"topic:{t}" for t in rng.sample(topics, rng.randint(1, 2)))
            if rng.random() < 0.5:
                q += ", " + term()
        elif r < 0.70:
            q = f"({listing(rng.randint(1, 4))}) -{term()}"
        elif r < 0.80:
            q = f"({term()} OR {term()}) AND {term()}"
        elif r < 0.88:
            q = f'author:"{rng.choice(authors)}", {listing(rng.randint(1, 3))}'
        elif r < 0.97:
            q = f"cat:{rng.choice(CATEGORIES)} AND ({listing(rng.randint(1, 3))})"
        else:
            q = "*" if rng.random() < 0.5 else f"* -{term()}"
        min_score = rng.choice([None, None, None, 2.0, 5.0])
        out.append((q, Limits(rng.choice([5, 10, 20, 20, 50]), min_score)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profiles", type=int, default=100_000)
    ap.add_argument("--papers", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=300, help="profiles checked naively")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    seed = load_corpus()
    papers = make_papers(seed, args.papers, rng)
    specs = make_profiles(seed, args.profiles, rng)

    t0 = time.perf_counter()
    profiles = {k: compile_profile(q) for k, (q, _) in enumerate(specs)}
    limits = {k: lim for k, (_, lim) in enumerate(specs)}
    t_compile = time.perf_counter() - t0
    distinct = len({q for q, _ in specs})

    t0, c0 = time.perf_counter(), time.process_time()
    result = match_all(profiles, papers, limits, Weights())
    t_index, c_index = time.perf_counter() - t0, time.process_time() - c0
    matched = sum(len(v) for v in result.values())

    t0 = time.perf_counter()
    whys = [m.why() for k in range(min(1000, args.profiles)) for m in result[k]]
    t_explain = time.perf_counter() - t0

    sample = rng.sample(range(args.profiles), min(args.sample, args.profiles))
    t0 = time.perf_counter()
    naive = match_all_naive({k: profiles[k] for k in sample}, papers, limits, Weights())
    t_naive = time.perf_counter() - t0
    mismatches = [k for k in sample if naive[k] != result[k]]
    naive_full = t_naive / len(sample) * args.profiles
    ratio = naive_full / t_index
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"profiles: {args.profiles} ({distinct} distinct texts), papers: {args.papers}")
    print(f"compile all profiles (once, cached by text): {t_compile:.2f} s")
    print(
        f"index edition (match + rank + cap): {t_index:.2f} s wall, {c_index:.2f} s CPU, "
        f"{matched} matches kept"
    )
    print(f"explanations for the first 1000 profiles ({len(whys)} matches): {t_explain:.3f} s")
    print(
        f"naive on {len(sample)} sampled profiles: {t_naive:.2f} s "
        f"-> {naive_full:.0f} s for all; identical results: {not mismatches}"
    )
    if mismatches:
        k = mismatches[0]
        print(f"MISMATCH for profile {specs[k][0]!r}: index {result[k]!r} naive {naive[k]!r}")
        sys.exit(1)
    print(
        f"RESULT profiles={args.profiles} papers={args.papers} seconds={t_index:.2f} "
        f"naive_ratio={ratio:.0f} rss_mib={rss:.0f}"
    )


if __name__ == "__main__":
    main()
