"""A digest's stored explanations are one JSON text written straight from its matches
(`explanations_json`, issue 13): it must be exactly the text `json.dumps` gave for the
explanations dict (the web page and `digest explain` read it back), for every kind of
hit, hostile strings and odd scores included."""

from __future__ import annotations

import json
import math
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.matching import Hit, Match, Weights, compile_profile, explanations_json, match_all
from digest.matching.model import score_json
from digest.models import Paper


def _dumped(matches: list[Match]) -> str:
    return json.dumps({m.paper_id: m.to_json() for m in matches})


def test_index_matches_give_the_dict_text_byte_for_byte() -> None:
    papers = [
        Paper(
            id=f"2601.{i:05d}",
            title=f'Diffusion robots {i} «quoted» "title"',
            abstract="Reinforcement learning with robot arms; 深度 learning.",
            authors=["Ada Lovelace"],
            categories=["cs.RO"],
            published=date(2026, 11, 20),
        )
        for i in range(30)
    ]
    query = 'diffusion, robot*, "reinforcement learning", author:lovelace, cat:cs.RO, topic:robot-learning'
    matches = match_all({"k": compile_profile(query)}, papers, None, Weights())["k"]
    assert matches and all(m.hits for m in matches)
    assert explanations_json(matches) == _dumped(matches)
    assert explanations_json([]) == "{}" == _dumped([])


hostile = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
hits = st.builds(
    Hit,
    hostile,
    st.sampled_from(["title", "abstract", "author", "category", "interest", "liked"]),
    st.none() | hostile,
)
scores = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(hostile, scores, st.lists(hits, max_size=5)), max_size=6))
def test_any_matches_give_the_dict_text(specs: list[tuple[str, float, list[Hit]]]) -> None:
    """Repeated paper ids, quotes, control characters, non-ASCII, NaN and infinite or
    integer scores: the same text as the dict, whatever the input."""
    matches = [Match(pid, score, list(found)) for pid, score, found in specs]
    assert explanations_json(matches) == _dumped(matches)


def test_why_and_terms_are_worked_out_once_and_follow_new_hits() -> None:
    m = Match("x", 1.0, [Hit("a", "title"), Hit("a", "abstract")])
    assert m.why() is m.why() and m.terms() == ["a"]
    assert m.term_tuple() == ("a",) and m.term_tuple() is m.term_tuple()
    m.terms().append("changed")  # a copy: the kept tuple (a card's key) is not touched
    m.hits = [Hit("b", "title"), Hit("c", "abstract"), Hit("b", "abstract")]
    assert m.why() == "matched: b, c" and m.terms() == ["b", "c"]
    assert m.term_tuple() == ("b", "c")
    assert json.loads(m.json_text()) == json.loads(json.dumps(m.to_json()))
    assert math.isnan(json.loads(Match("y", math.nan, []).json_text())["score"])


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=-1e10, max_value=1e10),
        # ranking's scores are integer units of 1e-6; ties at the fourth decimal too
        st.integers(-(10**15), 10**15).map(lambda u: u / 1e6),
        st.integers(-(10**13), 10**13).map(lambda u: (u * 100 + 50) / 1e6),
    )
)
@settings(max_examples=3000)
def test_a_score_is_written_as_json_dumps_writes_it_rounded(score: float) -> None:
    assert score_json(score) == json.dumps(round(score, 4))


def test_scores_at_the_edges_of_the_short_way() -> None:
    for score in (0.0, -0.0, 5e-05, -5e-05, 0.99995, 999_999_999.99995, 1e9, -1e9, 2, 12):
        assert score_json(score) == json.dumps(round(score, 4))
