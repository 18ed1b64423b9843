"""Subjects name what matched in readable words, not query syntax (issue 16:
"7 new papers: agent*, planning, language model")."""

from __future__ import annotations

from collections import Counter
from datetime import date
from email import message_from_bytes, policy

from digest.config import Settings
from digest.matching import Match, Weights, compile_profile, match_all, readable_terms
from digest.matching.highlight import TextSpans, authors_named
from digest.matching.readable import SCAN, TermAnalysis
from digest.matching.topics import load_catalogue
from digest.models import Paper
from digest.preview import sample_papers
from digest.rendering import Item, build_message, make_environment, render_digest

EDITION = date(2026, 11, 24)


def _paper(n: int, title: str, **kw: object) -> Paper:
    kw.setdefault("published", date(2026, 11, 23))
    return Paper(id=f"2611.{n:05d}", title=title, abstract=kw.pop("abstract", ""), **kw)


def _subject(query: str, papers: list[Paper], **settings: object) -> str:
    """The decoded Subject header of the message built for `query` over `papers`."""
    config = Settings(base_url="https://digest.example.org", secret_key="s", **settings)
    matches = match_all({0: compile_profile(query)}, papers, None, Weights(recency=0))[0]
    by_id = {p.id: p for p in papers}
    items = [Item(by_id[m.paper_id], m) for m in matches]
    rendered = render_digest(make_environment(config), config, "r@example.org", items, EDITION)
    raw = build_message(config, "r@example.org", rendered).data
    return str(message_from_bytes(raw, policy=policy.default)["Subject"])


def test_prefixes_phrases_and_words_read_as_words() -> None:
    papers = [
        _paper(1, "Agents for web tasks", upvotes=30),
        _paper(2, "Planning with LLM agents", upvotes=20),
        _paper(3, "A language model that plans", abstract="Agentic search.", upvotes=10),
    ]
    subject = _subject('agent*, planning, "language model"', papers)
    assert subject == "3 new papers: agents, planning, language model - 24 Nov"


def test_topics_authors_and_categories_read_as_names() -> None:
    papers = [
        _paper(1, "Jailbreak attacks on chat models", upvotes=30),
        _paper(2, "V-JEPA 2", authors=["Mido Assran", "Yann LeCun"], upvotes=20),
        _paper(3, "Parsing", categories=["cs.CL"], upvotes=10),
    ]
    query = 'topic:ai-safety, author:"Yann LeCun", cat:cs.CL'
    subject = _subject(query, papers)
    assert subject == (
        "3 new papers: AI safety, alignment and red-teaming, papers by Yann LeCun, cs.CL - 24 Nov"
    )
    assert "topic:" not in subject and "author:" not in subject and "cat:" not in subject
    # the operator's template keeps its {topics} placeholder
    custom = _subject("author:lecun", papers[1:2], subject_template="[digest] {topics} ({count})")
    assert custom == "[digest] papers by Yann LeCun (1)"


def _words_one_by_one(found: list[tuple[Match, Paper]], limit: int) -> list[str]:
    """The rules of `readable_terms` written out plainly, every text analysed afresh:
    the reference the run's cached words are held to."""
    catalogue = load_catalogue()
    out: list[str] = []
    for match, paper in found:
        for hit in match.hits:
            topic = catalogue.get(hit.topic or "")
            if topic is not None:
                word = topic.title
            elif hit.field == "author":
                named = [paper.authors[i] for i in authors_named(paper.authors, [hit.term])]
                word = f"papers by {' '.join(str(named[0] if named else hit.term).split())}"
            elif hit.field == "category":
                word = hit.term.rstrip("*").rstrip(".")
            elif "*" in hit.term:
                counts: Counter[str] = Counter()
                for m, p in found:
                    fields = {h.field for h in m.hits if h.term == hit.term}
                    for field, attr in [("title", "title"), ("abstract", "abstract")]:
                        if field in fields:
                            text = getattr(p, attr)[:SCAN]
                            counts.update(TextSpans(text).matched_texts(hit.term))
                word = counts.most_common(1)[0][0] if counts else hit.term.replace("*", "…")
            else:
                word = hit.term
            if word and word not in out:
                out.append(word)
                if len(out) == limit:
                    return out
    return out


def test_the_runs_cached_words_are_the_words_worked_out_afresh() -> None:
    """One TermAnalysis for a whole run (texts and author lists analysed once, reused
    by every later digest) gives each digest the words a fresh analysis gives."""
    papers = sample_papers()
    authors = sorted({a for p in papers for a in p.authors[:2]})
    queries = [
        "model*, diffusion, agent*",
        f'author:"{authors[0]}", learn*, cat:cs.CL',
        f'author:"{authors[-1]}", author:"{authors[1]}", transformer*',
        "topic:ai-safety, reason*, language model",
        "cat:cs.*, video, generat*, data*",
        'lang*, "large language", bench*, robot*, multi*',
    ]
    profiles = {k: compile_profile(q) for k, q in enumerate(queries)}
    results = match_all(profiles, papers, None, Weights(recency=0))
    by_id = {p.id: p for p in papers}
    run = TermAnalysis()
    seen_authors = 0
    for _ in range(2):  # the second time, every text and author list is known
        for k in profiles:
            found = [(m, by_id[m.paper_id]) for m in results[k]]
            assert found, queries[k]
            for limit in (3, 5, 50):
                words = readable_terms(found, limit, run)
                assert words == _words_one_by_one(found, limit), queries[k]
                assert words == readable_terms(found, limit)  # a fresh analysis
            seen_authors += any(w.startswith("papers by ") for w in words)
    assert seen_authors >= 4  # author words were worked out, and cached
