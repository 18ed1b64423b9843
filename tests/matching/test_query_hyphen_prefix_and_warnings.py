"""Query syntax a new user trips on (issue 16): a wildcard inside a hyphenated word
(`GPT-4V*`) counts the whole word, and a lower-case `and` / `or` / `not` is warned
about in `check-query` (text and --json) and on the sign-up page's live preview."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
from web_served import served

from digest.matching import Weights, compile_profile, highlight_spans, match_all
from digest.models import Paper

AND_WARNING = "'and' is read as a word; write AND to combine terms"


def _paper(pid: str, title: str) -> Paper:
    return Paper(id=pid, title=title, abstract="", published=date(2026, 11, 20))


def test_a_prefix_inside_a_hyphenated_word_counts_the_whole_word() -> None:
    papers = [
        _paper("a", "GPT-4V as a generalist judge"),
        _paper("b", "Probing GPT-4Vision on charts"),
        _paper("c", "GPT-4 Turbo and friends"),
        _paper("d", "4V stands alone here"),
    ]
    matches = match_all({0: compile_profile("GPT-4V*")}, papers, None, Weights())[0]
    assert sorted(m.paper_id for m in matches) == ["a", "b"]
    first = next(m for m in matches if m.paper_id == "a")
    title = papers[0].title
    assert [title[s:e] for s, e in highlight_spans(title, first)] == ["GPT-4V"]
    assert first.why() == "matched: GPT-4V*"


def test_short_wildcards_are_still_refused() -> None:
    for query in ("a-b*", "ro*", "x 4v*"):
        with pytest.raises(Exception, match="at least 3 letters before"):
            compile_profile(query)


def test_check_query_warns_about_lower_case_operators(cli) -> None:
    assert cli("fetch").code == 0
    res = cli("check-query", "diffusion and robots", "--since", "2000-01-01")
    assert res.code == 0, res.stderr
    assert f"warning: {AND_WARNING}" in res.stdout
    res = cli("check-query", "diffusion and robots", "--since", "2000-01-01", "--json")
    assert res.code == 0, res.stderr
    assert isinstance(json.loads(res.stdout), list)  # stdout stays the list of matches
    assert json.loads(res.stderr.strip().splitlines()[-1]) == {"warnings": [AND_WARNING]}
    quiet = cli("check-query", 'diffusion AND "salt and pepper"', "--json")
    assert quiet.code == 0 and "warnings" not in quiet.stderr
    hyphen = cli("check-query", "GPT-4V*")
    assert hyphen.code == 0, hyphen.stderr


@pytest.fixture
def server(settings, engine):
    """The app under uvicorn on a loopback port, in a background thread."""
    with served(settings, engine) as url:
        yield url


@pytest.mark.chromium
def test_the_live_preview_shows_warnings(server, browser) -> None:
    body = {"keywords": "diffusion or robots", "topics": [], "max_papers": 5}
    answer = httpx.post(server + "/api/preview", json=body, timeout=30).json()
    assert answer["ok"] and answer["warnings"] == [
        "'or' is read as a word; write OR (or a comma) for either term"
    ]
    body["keywords"] = "diffusion OR robots"
    assert httpx.post(server + "/api/preview", json=body, timeout=30).json()["warnings"] == []

    page = browser.new_context().new_page()
    page.goto(server + "/")
    page.fill("#keywords", "diffusion and robots")
    warnings = page.locator("#preview-warnings")
    warnings.wait_for(state="visible", timeout=15_000)
    assert warnings.inner_text().strip() == AND_WARNING
    page.fill("#keywords", "diffusion AND robots")
    warnings.wait_for(state="hidden", timeout=15_000)
