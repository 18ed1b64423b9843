"""Invisible format characters (soft hyphen, zero-width space/joiners, word joiner,
BOM, bidi controls) inside a word: text pasted from a PDF or a web page carries them
on both sides of a match. They must not split a word in two."""

from __future__ import annotations

import json
from datetime import date

import pytest

from digest.matching import Weights, compile_profile, highlight_spans, match_all
from digest.matching.text import tokens
from digest.models import Paper

INVISIBLE = ["\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066"]


@pytest.mark.parametrize("mark", INVISIBLE)
def test_an_invisible_character_inside_a_word_does_not_split_it(mark: str) -> None:
    assert tokens(f"Trans{mark}former models") == ["transformer", "models"]
    papers = [
        Paper(id="a", title="Transformer models", abstract="", published=date(2026, 11, 20)),
        Paper(id="b", title=f"Trans{mark}former", abstract="", published=date(2026, 11, 20)),
        Paper(id="c", title="trans former", abstract="", published=date(2026, 11, 20)),
    ]
    matches = match_all({0: compile_profile(f"trans{mark}former")}, papers, None, Weights())[0]
    assert sorted(m.paper_id for m in matches) == ["a", "b"]
    second = next(m for m in matches if m.paper_id == "b")
    title = papers[1].title
    assert [title[s:e] for s, e in highlight_spans(title, second)] == [title]


def test_check_query_with_a_zero_width_space_matches_the_plain_word(cli) -> None:
    assert cli("fetch").code == 0
    plain = cli("check-query", "diffusion", "--since", "2000-01-01", "--json")
    pasted = cli("check-query", "diff\u200busion", "--since", "2000-01-01", "--json")
    assert plain.code == pasted.code == 0, pasted.stderr
    assert json.loads(plain.stdout), "the bundled sample has diffusion papers"
    ids = [r["id"] for r in json.loads(pasted.stdout)]
    assert ids == [r["id"] for r in json.loads(plain.stdout)]
    # a profile of nothing but invisible characters is still refused, in one line
    empty = cli("check-query", "\u200b\u200d")
    assert empty.code == 2 and "Traceback" not in empty.stderr
