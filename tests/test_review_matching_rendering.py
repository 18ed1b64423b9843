"""Regression tests for bugs found reviewing matching (issue 5) and rendering (issue 6)."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace

import pytest

from digest.config import Settings
from digest.errors import QueryError
from digest.matching import Hit, Match, compile_profile, match_all
from digest.matching.naive import match_all_naive
from digest.models import Paper
from digest.rendering import Item, make_environment, render_digest


@pytest.mark.parametrize(
    ("query", "position"),
    [("rob*t", 3), ('title:"deep rob*t"', 15), ("diffusion, gen*ai", 14)],
)
def test_wildcard_inside_a_word_is_an_error_not_a_phrase(query: str, position: int) -> None:
    # `rob*t` used to be read silently as the phrase `rob* t`.
    with pytest.raises(QueryError) as caught:
        compile_profile(query)
    assert caught.value.position == position
    assert "may only end a word" in str(caught.value)


def test_wildcard_before_a_separator_still_works() -> None:
    assert compile_profile("robot*-arm").describe() == "{robot* arm} in title/abstract"


def test_check_query_takes_a_leading_minus_as_the_query(cli) -> None:
    # `-survey` is the language's exclusion; the CLI used to read it as an unknown option.
    assert cli("fetch").code == 0
    res = cli("check-query", "-survey", "--since", "2000-01-01", "--json")
    assert res.code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows and all("survey" not in r["title"].lower() for r in rows)
    typo = cli("check-query", "--jsn", "diffusion")
    assert typo.code == 2 and "Traceback" not in typo.stderr


def test_one_upvote_is_singular_in_both_parts() -> None:
    settings = Settings(base_url="https://digest.example.org", secret_key="k")
    paper = Paper(seq=1, id="2411.00001", title="One vote", abstract="A.", upvotes=1)
    rendered = render_digest(
        make_environment(settings),
        settings,
        "r@example.org",
        [Item(paper, Match(paper.id, 1.0, [Hit("vote", "title")]))],
        date(2026, 11, 24),
    )
    for part in (rendered.text, rendered.html):
        assert "1 upvote" in part and "1 upvotes" not in part


def _paper(pid: str, **fields: object) -> SimpleNamespace:
    base = dict(title="", abstract="", authors=[], categories=[], ai_keywords=[], upvotes=None) | {
        "published": None
    }
    return SimpleNamespace(id=pid, **(base | fields))


def test_index_and_naive_agree_on_edge_papers() -> None:
    papers = [
        _paper("p1"),
        _paper(
            "p2",
            title="Schölkopf ﬁne LLMs",
            abstract=None,
            authors=["José Núñez", ""],
            categories=["cs.LG", " "],
            upvotes=5,
            published=date(2026, 11, 24),
        ),
        _paper(
            "p3",
            title="½ models",
            abstract="robot-arm",
            authors=["Ａｎｄｒｅｗ"],
            categories=["CS.CL"],
        ),
        _paper("p0", title="robots ROBOT", authors=None, categories=None, upvotes=-3),
    ]
    queries = [
        "*",
        "NOT *",
        "-robot",
        "cat:cs.*",
        "cat:cs",
        "author:núñez",
        "author:andrew",
        "fine",
        "scholkopf",
        '"robot arm"',
        "robot*",
        "½",
        "NOT model AND NOT robot",
    ]
    profiles = {q: compile_profile(q) for q in queries}
    fast, naive = match_all(profiles, papers), match_all_naive(profiles, papers)
    assert fast == naive
    # `*` ranks by popularity; equal scores go to the smaller id, deterministically.
    assert [m.paper_id for m in fast["*"]] == ["p2", "p0", "p1", "p3"]
    assert [m.paper_id for m in fast["-robot"]] == ["p2", "p1"]
    assert [m.paper_id for m in fast["author:núñez"]] == ["p2"]
    assert [m.paper_id for m in fast["author:andrew"]] == ["p3"]


def test_render_without_a_digest_key_has_no_view_link() -> None:
    # render_digest(digest_key=None) used to fail in the templates on `links.view`.
    settings = Settings(base_url="https://digest.example.org", secret_key="k")
    papers = [
        Paper(seq=i, id=f"2411.{i:05d}", title=f"P {i}", abstract="A." * 9000) for i in range(60)
    ]
    rendered = render_digest(
        make_environment(settings),
        settings,
        "r@example.org",
        [Item(p, Match(p.id, 1.0, [])) for p in papers],
        date(2026, 11, 24),
    )
    assert "/view/" not in rendered.html and "/view/" not in rendered.text
    assert "View in" not in rendered.html
    assert rendered.shown < rendered.total == 60
    assert "/manage/" in rendered.html.split("more papers")[0].rsplit("href=", 1)[-1]


def test_preview_of_a_legacy_subscriber_profile_renders_like_the_pipeline(engine, settings) -> None:
    # A profile stored before the language grew operators is read by the pipeline with
    # compile_stored; preview used to refuse it with a query error instead.
    from digest import store
    from digest.models import Subscriber
    from digest.preview import render_preview

    store.add_subscriber(engine, Subscriber(email="old@example.org", keywords='diffusion, "robot'))
    with pytest.raises(QueryError):
        compile_profile('diffusion, "robot')
    text = render_preview(engine, settings, "old@example.org", None, "text").decode()
    assert "matched: diffusion" in text


def test_a_phrase_has_a_word_limit() -> None:
    # A 1,300-word phrase cost ~0.16 s per paper whose abstract nearly repeats it.
    from digest.matching.query import MAX_PHRASE_WORDS

    compile_profile('"' + " ".join(["lm"] * MAX_PHRASE_WORDS) + '"')
    with pytest.raises(QueryError) as caught:
        compile_profile('diffusion, "' + " ".join(["lm"] * (MAX_PHRASE_WORDS + 1)) + '"')
    assert caught.value.position == 11 and "at most" in str(caught.value)
