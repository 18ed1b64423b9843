"""Subjects name what matched in readable words, not query syntax (issue 16:
"7 new papers: agent*, planning, language model")."""

from __future__ import annotations

from datetime import date
from email import message_from_bytes, policy

from digest.config import Settings
from digest.matching import Weights, compile_profile, match_all
from digest.models import Paper
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
