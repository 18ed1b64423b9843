"""A realistic edition workload, shared by the benchmarks (render, edition).

What a real edition has, not what is easy to generate: subscribers whose profiles
draw their words from the seed corpus's ~4,000-word vocabulary by Zipf (the popular
words of a field are the ones people follow), with phrases, prefixes (`agent*`),
topics (`topic:NAME`), NOT clauses, followed authors, categories and a per-subscriber
`max_papers`; papers replicated from the corpus up to M, each copy with its own id,
a perturbed title and a reshuffled abstract, so no two cards are the same.

    from workload import load_corpus, make_papers, make_profiles, card_reuse

    corpus = load_corpus()                      # ../shared/corpus, else digest/data
    papers = make_papers(corpus, 1000, seed=7)  # digest.models.Paper, seq 1..M
    for spec in make_profiles(corpus, 10_000, seed=7):
        spec.email, spec.keywords, spec.max_papers, spec.min_score

Every query `make_profiles` yields is accepted by the strict profile parser
(`KeywordQuery.parse`, what `digest subscribe --keywords` runs); `python
bench/workload.py` checks that on a few thousand and prints the mix.

Import it as `workload` from a script in bench/ (its folder is on sys.path) or as
`bench.workload` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from digest.matching import KeywordQuery, Match  # noqa: E402
from digest.matching.text import tokens  # noqa: E402
from digest.matching.topics import load_catalogue  # noqa: E402
from digest.models import Paper  # noqa: E402

SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
SAMPLE_CORPUS = ROOT / "digest" / "data" / "sample_papers.jsonl"
VOCABULARY_SIZE = 4000
EDITION_TIME = datetime(2026, 11, 25, 6, tzinfo=UTC)

_STOP_WORDS = """the a an of and or in on for to with we our is are by from as that this at be it
    its which these can using based via into such than their has have not also both more
    while when how show shows shown results paper propose proposed new two one used use
    however across between over they them may been further each other most only under
    then thus here there where what whether will would could should do does done without
    within among all any some many much very well first second third large small high low
    different various several existing given make makes made data approach method methods
    model models work task tasks but yet http https www github com org html"""
STOP = frozenset(_STOP_WORDS.split())
CATEGORIES = [
    "cs.CL", "cs.LG", "cs.CV", "cs.AI", "cs.RO", "cs.SD", "eess.AS", "cs.IR", "cs.CR",
    "cs.NE", "stat.ML", "cs.HC", "cs.MA", "cs.SE", "q-bio.QM", "physics.comp-ph",
    "math.OC", "eess.IV", "cs.DC", "cs.GR",
]  # fmt: skip
FIRST = ["Wei", "Yann", "Anna", "Li", "Maria", "Chen", "Jun", "Sara", "Omar", "Ivan", "Lena",
         "Hiro", "Priya", "Tom", "Ana", "Kai", "Noor", "Emil"]  # fmt: skip
LAST = ["Zhang", "Wang", "LeCun", "Smith", "Garcia", "Müller", "Kim", "Nguyen", "Rossi",
        "Patel", "Sato", "Novak", "Silva", "Cohen", "Ali", "Berg"]  # fmt: skip
TITLE_VARIANTS = [
    "Revisited", "at Scale", "A Replication Study", "Extended Version", "Beyond Benchmarks",
    "Lessons Learned", "An Empirical Study", "Towards Robustness", "in the Wild",
    "A Unified View", "Made Efficient", "for Low-Resource Settings",
]  # fmt: skip
MAX_PAPERS_CHOICES = [5, 10, 10, 20, 20, 20, 30, 50]


def corpus_path(path: Path | None = None) -> Path:
    """`path`, else the enriched seed corpus (authors, dates), else the plain seed
    corpus, else the sample papers packaged with digest."""
    if path is not None:
        return path
    for candidate in (
        SHARED_CORPUS / "seed_papers_enriched.jsonl",
        SHARED_CORPUS / "seed_papers.jsonl",
    ):
        if candidate.is_file():
            return candidate
    return SAMPLE_CORPUS


def load_corpus(path: Path | None = None) -> list[dict[str, Any]]:
    """The corpus records (title, abstract, maybe authors/published) as dicts."""
    lines = corpus_path(path).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if r.get("title") and r.get("abstract")]


def zipf_pick(rng: random.Random, items: Sequence[Any], s: float = 1.1) -> Callable[[], Any]:
    """A picker of `items` (most popular first) with Zipf weights 1/rank^s."""
    weights = [1.0 / (r + 1) ** s for r in range(len(items))]
    cumulative: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    return lambda: rng.choices(items, cum_weights=cumulative, k=1)[0]


@dataclass(frozen=True)
class Vocabulary:
    """What profiles are written from, most frequent first."""

    words: list[str]
    phrases: list[str]
    authors: list[str]


def vocabulary(corpus: Sequence[Mapping[str, Any]], size: int = VOCABULARY_SIZE) -> Vocabulary:
    counts: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    authors: Counter[str] = Counter()
    for record in corpus:
        found = tokens(f"{record['title']} {record['abstract']}")
        useful = [w if w not in STOP and len(w) > 2 and w.isalpha() else "" for w in found]
        counts.update(w for w in useful if w)
        bigrams.update(f"{a} {b}" for a, b in zip(useful, useful[1:], strict=False) if a and b)
        authors.update(a for a in record.get("authors") or [] if _usable_name(a))
    names = [a for a, _ in authors.most_common()] or synthetic_authors()
    return Vocabulary(
        words=[w for w, _ in counts.most_common(size)],
        phrases=[p for p, c in bigrams.most_common(3000) if c > 1],
        authors=names,
    )


def _usable_name(name: str) -> bool:
    return bool(name) and '"' not in name and len(name) < 80 and len(tokens(name)) > 0


def synthetic_authors() -> list[str]:
    return [f"{f} {last}" for f in FIRST for last in LAST]


# ---------------------------------------------------------------- profiles


@dataclass(frozen=True)
class ProfileSpec:
    """One subscriber as `digest subscribe` would store them."""

    email: str
    keywords: str
    max_papers: int
    min_score: float | None = None


def make_profiles(
    corpus: Sequence[Mapping[str, Any]],
    n: int,
    seed: int = 7,
    vocab: Vocabulary | None = None,
) -> Iterator[ProfileSpec]:
    """`n` subscribers, deterministic for `seed`. The mix (shares of subscribers):
    40% a list of 2-6 terms, 15% one or two topics (half with a term), 15% a list
    with a NOT clause, 10% `(a OR b) AND c`, 8% a followed author with terms, 9% a
    category with terms, 3% everything (`*`, maybe with a NOT). A term is a Zipf
    word (65%), a corpus phrase (25%) or a prefix of a long word (10%)."""
    rng = random.Random(seed)
    vocab = vocab or vocabulary(corpus)
    word = zipf_pick(rng, vocab.words)
    phrase = zipf_pick(rng, vocab.phrases or vocab.words)
    author = zipf_pick(rng, vocab.authors, 0.8)
    category = zipf_pick(rng, CATEGORIES, 1.0)
    topics = list(load_catalogue())

    def term() -> str:
        r = rng.random()
        if r < 0.25:
            return f'"{phrase()}"'
        w = word()
        if r < 0.35 and len(w) > 5:
            return w[: rng.randint(4, len(w) - 1)] + "*"
        return w

    def distinct_terms(k: int) -> list[str]:
        picked = [term() for _ in range(k)]
        return list(dict.fromkeys(picked))  # a Zipf draw often repeats a word

    def listing(k: int) -> str:
        return ", ".join(distinct_terms(k))

    for k in range(n):
        r = rng.random()
        if r < 0.40:
            q = listing(rng.randint(2, 6))
        elif r < 0.55:
            q = ", ".join(f"topic:{t}" for t in rng.sample(topics, rng.randint(1, 2)))
            if rng.random() < 0.5:
                q += ", " + term()
        elif r < 0.70:
            wanted = distinct_terms(rng.randint(1, 4))
            unwanted = [t for t in distinct_terms(2) if t not in wanted]
            q = f"({', '.join(wanted)})"
            if unwanted:
                q += f" NOT {unwanted[0]}"
            if len(unwanted) > 1 and rng.random() < 0.3:
                q += f" -{unwanted[1]}"
        elif r < 0.80:
            found = distinct_terms(3)
            q = f"({found[0]} OR {found[1]}) AND {found[2]}" if len(found) == 3 else found[0]
        elif r < 0.88:
            q = f'author:"{author()}", {listing(rng.randint(1, 3))}'
        elif r < 0.97:
            q = f"cat:{category()} AND ({listing(rng.randint(1, 3))})"
        else:
            q = "*" if rng.random() < 0.5 else f"* -{term()}"
        yield ProfileSpec(
            email=f"reader{k}@bench.example.org",
            keywords=q,
            max_papers=rng.choice(MAX_PAPERS_CHOICES),
            min_score=rng.choice([None] * 9 + [2.0]),
        )


# ---------------------------------------------------------------- papers


def make_papers(
    corpus: Sequence[Mapping[str, Any]],
    m: int,
    seed: int = 7,
    now: datetime = EDITION_TIME,
) -> list[Paper]:
    """`m` papers (`seq` 1..m, ids `2511.NNNNN`): the corpus first as it is, then
    copies with a perturbed title (`Title: Revisited (3)`), sentences of other papers
    mixed into the abstract, and new authors, categories, keywords and upvotes."""
    rng = random.Random(seed)
    sentences = [s.strip() for d in corpus for s in str(d["abstract"]).split(". ") if s.strip()]
    fallback_authors = zipf_pick(rng, synthetic_authors(), 0.8)
    category = zipf_pick(rng, CATEGORIES, 1.0)
    out = []
    for i in range(m):
        record = corpus[i % len(corpus)]
        rounds = i // len(corpus)
        title, abstract = str(record["title"]), str(record["abstract"])
        if rounds:
            title = f"{title}: {rng.choice(TITLE_VARIANTS)} ({rounds + 1})"
            abstract = ". ".join([*rng.sample(sentences, 2), abstract[:700]])
        authors = list(record.get("authors") or [])
        if not authors or rounds:
            authors = list(dict.fromkeys(fallback_authors() for _ in range(rng.randint(1, 9))))
            if record.get("authors") and rng.random() < 0.5:
                authors.insert(rng.randint(0, len(authors)), str(record["authors"][0]))
        found = [w for w in tokens(abstract) if w not in STOP and len(w) > 3]
        keywords = [
            " ".join(found[j : j + 2]) for j in rng.sample(range(max(len(found) - 1, 1)), 3)
        ]
        paper_id = f"2511.{i:05d}"
        published = record.get("published")
        out.append(
            Paper(
                seq=i + 1,
                id=paper_id,
                title=title,
                abstract=abstract,
                authors=authors,
                categories=list(dict.fromkeys(category() for _ in range(rng.randint(1, 3)))),
                published=date.fromisoformat(published) if published and not rounds else None,
                url=f"https://arxiv.org/abs/{paper_id}",
                pdf_url=f"https://arxiv.org/pdf/{paper_id}",
                hf_url=f"https://huggingface.co/papers/{paper_id}",
                code_url=f"https://github.com/example/{paper_id}" if rng.random() < 0.3 else None,
                upvotes=int(rng.paretovariate(1.2)) - 1 if rng.random() < 0.6 else None,
                ai_keywords=keywords if found else [],
                sources=["bench"],
                first_seen=now - timedelta(hours=rng.randint(1, 72)),
                updated_at=now - timedelta(hours=1),
            )
        )
    return out


# ---------------------------------------------------------------- card reuse


@dataclass(frozen=True)
class CardReuse:
    """Card uses (papers shown over all digests) against distinct cards (a card is
    the same for two subscribers when paper, highlighted terms and reason are)."""

    uses: int
    distinct: int

    @property
    def reused_share(self) -> float:
        return 1 - self.distinct / self.uses if self.uses else 0.0

    def describe(self) -> str:
        return (
            f"{self.distinct:,} distinct cards for {self.uses:,} card uses "
            f"({self.reused_share:.0%} reused)"
        )


def card_reuse(results: Mapping[Any, Sequence[Match]]) -> CardReuse:
    """How much a per-card cache could save on `results` ({subscriber: matches})."""
    uses = 0
    distinct: set[tuple[str, tuple[str, ...], str]] = set()
    for matches in results.values():
        uses += len(matches)
        distinct.update((m.paper_id, tuple(m.terms()), m.why()) for m in matches)
    return CardReuse(uses, len(distinct))


def main() -> None:
    ap = argparse.ArgumentParser(description="Check and describe the generated workload.")
    ap.add_argument("--profiles", type=int, default=5000)
    ap.add_argument("--papers", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--corpus", type=Path, default=None)
    args = ap.parse_args()
    corpus = load_corpus(args.corpus)
    vocab = vocabulary(corpus)
    specs = list(make_profiles(corpus, args.profiles, args.seed, vocab))
    for spec in specs:
        KeywordQuery.parse(spec.keywords)  # raises on the first one the parser refuses
    papers = make_papers(corpus, args.papers, args.seed)
    print(f"corpus {corpus_path(args.corpus)}: {len(corpus)} records, {len(vocab.words)} words")
    print(f"{len(specs)} profiles, {len({s.keywords for s in specs})} distinct; e.g.")
    for spec in specs[:8]:
        print(f"  {spec.max_papers:>3}  {spec.keywords}")
    print(f"{len(papers)} papers, {len({p.title for p in papers})} distinct titles")
    print(f"RESULT profiles={len(specs)} parsed=all papers={len(papers)}")


if __name__ == "__main__":
    main()
