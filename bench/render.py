"""How many complete digest messages (rendered, CSS inlined, MIME bytes) one core
builds per second, against the straightforward way measured in the same run: every
template rendered per message, premailer per message, `email.message` per message.

    .venv/bin/python bench/render.py [--profiles realistic|fixed] [--digests N] [--seed S]

`--profiles realistic` (the default) is an edition as it is: subscribers from
`bench/workload.py` (Zipf words of a 4,000-word vocabulary, phrases, prefixes,
topics, NOT clauses, authors, categories, their own max_papers) matched by the real
matcher against 1,000 papers (`--papers`), so most cards differ between subscribers.
`--profiles fixed` is the older case: 1-3 of 18 terms, 10-20 papers each, where
almost every card is reused; kept for comparison.

Rates are per CPU second of this process (`time.process_time`), which is what "per
core" means and keeps the figure stable when other work shares the machine.

`--gc worker` (the default) renders with the cyclic garbage collector set as an
edition's build workers set it (`digest.pipeline.pool.GC_THRESHOLDS`, the state
built before rendering frozen), which is how editions render; `--gc default` keeps
Python's defaults, under which collections walking the benchmark's own large heap
(every subscriber's matches) cost ~20% more.

Last line: `RESULT profiles=MODE digests_per_s=X premailer_per_s=Y ratio=Z cards_reused=R gc=G`.
"""

from __future__ import annotations

import argparse
import email.policy
import gc
import json
import random
import sys
import time
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import premailer
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import workload  # noqa: E402

from digest.config import Settings  # noqa: E402
from digest.matching import Hit, Match, Weights, profile_from_input, rank  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.pipeline.pool import GC_THRESHOLDS  # noqa: E402
from digest.rendering import (  # noqa: E402
    Item,
    build_message,
    make_environment,
    packaged_templates_dir,
    render_digest,
    subscriber_links,
)
from digest.rendering.cards import paper_view  # noqa: E402
from digest.rendering.filters import register  # noqa: E402
from digest.rendering.highlight import author_parts, highlight_parts  # noqa: E402

TERMS = [
    "diffusion", "language model", "robot", "reinforcement learning", "transformer",
    "video", "agents", "reasoning", "benchmark", "vision", "speech", "3D",
    "alignment", "retrieval", "image generation", "multimodal", "code", "graph",
]  # fmt: skip


def load_papers() -> list[Paper]:
    paths = [REPO / "digest" / "data" / "sample_papers.jsonl"]
    seed = REPO.parent / "shared" / "corpus" / "seed_papers.jsonl"
    if seed.is_file():
        paths.append(seed)
    papers = []
    for path in paths:
        for i, line in enumerate(path.read_text().splitlines()):
            if not line.strip():
                continue
            raw = json.loads(line)
            raw["published"] = (
                date.fromisoformat(raw["published"]) if raw.get("published") else None
            )
            known = {k: v for k, v in raw.items() if k in Paper.model_fields}
            known.setdefault("id", f"{path.stem}:{i}")
            papers.append(Paper(seq=len(papers), **known))
    return papers


def make_digests(papers: list[Paper], n: int, rng: random.Random) -> list[tuple[str, list[Item]]]:
    """Subscribers with 1-3 terms; each gets 10-20 papers, each paper with the hits a
    matcher would report (the subscriber's terms that occur in it), so the card cache
    sees what a real run shows it."""
    text = {p.id: f"{p.title} {p.abstract}".casefold() for p in papers}
    out = []
    for k in range(n):
        terms = rng.sample(TERMS, rng.randint(1, 3))
        matching = [p for p in papers if any(t.casefold() in text[p.id] for t in terms)]
        others = [p for p in papers if p not in matching] if len(matching) < 20 else []
        want = rng.randint(10, 20)
        chosen = rng.sample(matching, min(want, len(matching)))
        chosen += rng.sample(others, want - len(chosen))
        items = []
        for paper in chosen:
            hits = [Hit(t, "abstract") for t in terms if t.casefold() in text[paper.id]]
            items.append(Item(paper, Match(paper.id, 1.0, hits or [Hit(terms[0], "category")])))
        out.append((f"reader{k}@example.org", items))
    return out


def realistic_digests(
    n: int, papers_wanted: int, seed: int
) -> tuple[list[tuple[str, list[Item]]], list[Paper]]:
    """Subscribers from bench/workload.py, matched by the real matcher; those with no
    match (who get no digest) are left out."""
    corpus = workload.load_corpus()
    papers = workload.make_papers(corpus, papers_wanted, seed)
    specs = list(workload.make_profiles(corpus, n, seed))
    profiles = {
        k: profile_from_input(s.keywords, s.max_papers, s.min_score) for k, s in enumerate(specs)
    }
    results = rank(profiles, papers, Weights())
    by_id = {p.id: p for p in papers}
    digests = [
        (specs[k].email, [Item(by_id[m.paper_id], m) for m in results[k]])
        for k in range(n)
        if results[k]
    ]
    return digests, papers


def fast_path(settings: Settings, digests, edition: date) -> tuple[int, int]:
    """(bytes built, papers analysed): each paper's card is rendered from its
    templates into a pattern once; every card use fills that pattern."""
    env = make_environment(settings)
    size = 0
    for i, (addr, items) in enumerate(digests):
        # token_version: every card carries its signed feedback links, as in an edition
        rendered = render_digest(
            env, settings, addr, items, edition, f"{i}:{edition}", "bench", token_version=0
        )
        size += len(build_message(settings, addr, rendered).as_bytes())
    return size, len(env.papers)


def reuse_of(digests: list[tuple[str, list[Item]]]) -> workload.CardReuse:
    return workload.card_reuse(
        {k: [i.match for i in items if i.match] for k, (_, items) in enumerate(digests)}
    )


def baseline(settings: Settings, digests, edition: date) -> int:
    """Every template rendered for every message, then premailer, then `email`."""
    env = Environment(
        loader=FileSystemLoader(str(packaged_templates_dir())),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    register(env)
    css = (packaged_templates_dir() / "email.css").read_text()
    page, card, text_page, text_card = (
        env.get_template(n)
        for n in ("digest.html", "partials/card.html", "digest.txt", "partials/card.txt")
    )
    size = 0
    for i, (addr, items) in enumerate(digests):
        links = subscriber_links(settings, addr, f"{i}:{edition}")
        cards, text_cards = [], []
        for item in items:
            view = paper_view(item.paper)
            why = item.match.why() if item.match else ""
            ctx = {
                "paper": view,
                "why": why,
                "title_parts": highlight_parts(view.title, item.match),
                "author_parts": author_parts(item.paper.authors, item.match),
                "summary_parts": highlight_parts(view.summary, item.match),
            }
            cards.append(card.render(ctx))
            text_cards.append(text_card.render(ctx))
        context = {
            "date_label": str(edition),
            "email": addr,
            "profile": "bench",
            "links": links,
            "more_url": links["view"],
            "total": len(items),
            "shown": len(items),
            "more": 0,
            "topics": [],
            "preheader": "",
            "feedback": [None] * len(items),  # the fast path's links are not timed here either
        }
        html = page.render({**context, "cards": cards}).replace("/*digest:css*/", css)
        html = premailer.transform(html, keep_style_tags=True, disable_validation=True)
        text = text_page.render({**context, "cards": text_cards})
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = settings.from_address
        msg["To"] = addr
        msg["Subject"] = f"{len(items)} new papers"
        msg["List-Unsubscribe"] = f"<{links['unsubscribe']}>"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        size += len(msg.as_bytes())
    return size


def email_package_mime(settings: Settings, digests, edition: date) -> float:
    """The MIME step alone with the `email` package (for the record)."""
    env = make_environment(settings)
    rendered = [
        (addr, render_digest(env, settings, addr, items, edition, "k", "bench"))
        for addr, items in digests
    ]
    start = time.process_time()
    for addr, r in rendered:
        msg = EmailMessage(policy=email.policy.default)
        msg["From"] = settings.from_address
        msg["To"] = addr
        msg["Subject"] = r.subject
        msg.set_content(r.text)
        msg.add_alternative(r.html, subtype="html")
        msg.as_bytes()
    email_s = time.process_time() - start
    start = time.process_time()
    for addr, r in rendered:
        # encode both bodies afresh, as `email` does
        r.__dict__.pop("text_body", None)
        r.__dict__.pop("html_body", None)
        build_message(settings, addr, r).as_bytes()
    ours_s = time.process_time() - start
    print(
        f"mime only: email package {len(rendered) / email_s:,.0f}/s, "
        f"ours {len(rendered) / ours_s:,.0f}/s"
    )
    return ours_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", choices=["realistic", "fixed"], default="realistic")
    parser.add_argument("--digests", type=int, default=10000, help="subscribers")
    parser.add_argument("--papers", type=int, default=1000, help="papers (realistic mode)")
    parser.add_argument("--baseline-digests", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gc", choices=["worker", "default"], default="worker")
    args = parser.parse_args()
    settings = Settings(base_url="https://digest.example.org", secret_key="bench-secret")
    rng = random.Random(args.seed)
    edition = date(2026, 11, 24)
    if args.profiles == "fixed":
        papers = load_papers()
        digests = make_digests(papers, args.digests, rng)
    else:
        digests, papers = realistic_digests(args.digests, args.papers, args.seed)
    reuse = reuse_of(digests)
    print(
        f"{args.profiles} profiles: {len(papers)} papers, {len(digests)} digests "
        f"of {reuse.uses / max(len(digests), 1):.1f} papers on average; {reuse.describe()}"
    )

    if args.gc == "worker":  # as a build worker renders (pipeline/pool.py)
        gc.set_threshold(*GC_THRESHOLDS)
        gc.collect()
        gc.freeze()
    start = time.process_time()
    size, rendered_cards = fast_path(settings, digests, edition)
    fast_s = time.process_time() - start
    fast_rate = len(digests) / fast_s
    uses = sum(len(items) for _, items in digests)
    print(
        f"fast path: {fast_rate:,.0f} messages/s, mean {size / len(digests) / 1000:.1f} kB, "
        f"{rendered_cards:,} papers analysed for {uses:,} card uses"
    )

    few = digests[: args.baseline_digests]
    start = time.process_time()
    base_size = baseline(settings, few, edition)
    base_s = time.process_time() - start
    base_rate = len(few) / base_s
    print(
        f"baseline (premailer + email per message): {base_rate:,.1f} messages/s, "
        f"mean {base_size / len(few) / 1000:.1f} kB"
    )
    email_package_mime(settings, digests[:1000], edition)
    print(
        f"RESULT profiles={args.profiles} digests_per_s={fast_rate:.0f} "
        f"premailer_per_s={base_rate:.1f} ratio={fast_rate / base_rate:.1f} "
        f"cards_reused={reuse.reused_share:.2f} gc={args.gc}"
    )


if __name__ == "__main__":
    main()
