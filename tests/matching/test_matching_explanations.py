"""Explanations tell the truth: only the terms of clauses a paper satisfies explain
or score its match, in the index and in the naive reference alike (issue 16)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.matching import Limits, Weights, compile_profile, match_all
from digest.matching.documents import analyse_paper
from digest.matching.index import NUMPY_FROM
from digest.matching.naive import match_all_naive
from digest.matching.nodes import And, Doc, Leaf, Node, Not, Or
from digest.models import Paper

QUERY = '"reinforcement learning" AND robot*, diffusion'


def _paper(pid: str, title: str, abstract: str = "") -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, published=date(2026, 11, 20))


def test_a_failed_and_clause_neither_explains_nor_scores() -> None:
    robots = _paper("2601.00001", "Diffusion policies for robots", "Visuomotor robot control.")
    profiles = {"k": compile_profile(QUERY)}
    control = {"k": compile_profile("diffusion")}
    papers = [robots, _paper("2601.00002", "Speech recognition")]
    for evaluate in (match_all, match_all_naive):
        (match,) = evaluate(profiles, papers, None, Weights())["k"]
        assert match.why() == "matched: diffusion"
        assert {h.term for h in match.hits} == {"diffusion"}
        # robot* adds nothing: the same score as the query `diffusion` alone
        assert match.score == evaluate(control, papers, None, Weights())["k"][0].score


def test_a_satisfied_and_clause_still_explains() -> None:
    rl = _paper("2601.00003", "Reinforcement learning for robots with diffusion")
    (match,) = match_all({"k": compile_profile(QUERY)}, [rl], None, Weights())["k"]
    assert match.why() == "matched: reinforcement learning, robot*, diffusion"


def test_an_excluded_clause_does_not_explain_through_another_branch() -> None:
    # `diffusion -survey, robot*` on a diffusion survey about robots: only robot* holds
    survey = _paper("2601.00004", "A survey of diffusion for robots")
    (match,) = match_all({"k": compile_profile("diffusion -survey, robot*")}, [survey])["k"]
    assert match.why() == "matched: robot*"


# ---------------------------------------------------------------- property

WORDS = ["diffusion", "robot", "robots", "robotic", "learning", "reinforcement", "rl",
         "policy", "survey", "language", "model", "models"]  # fmt: skip
QUERY_WORDS = [*WORDS, "robot*", "learn*", "mod*", '"reinforcement learning"',
               '"language model"', "title:robot", "abstract:survey", "*"]  # fmt: skip


def queries() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda t: f"({t[0]} AND {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}, {t[1]}"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]} {t[1]}"),
            inner.map(lambda q: f"-({q})"),
            inner.map(lambda q: f"NOT {q}"),
        )

    return st.recursive(st.sampled_from(QUERY_WORDS), extend, max_leaves=8)


text = st.lists(st.sampled_from([*WORDS, "Robotics", "Models"]), max_size=10).map(" ".join)


def satisfied_terms(node: Node, doc: Doc) -> set[str]:
    """Keys of the terms reachable from `node` through satisfied nodes only, never
    through a NOT: what may explain a match (written here independently of the
    evaluators, from `Node.test` alone)."""
    if not node.test(doc) or isinstance(node, Not):
        return set()
    if isinstance(node, Leaf):
        return {node.term.key}
    if isinstance(node, And | Or):
        return set().union(*(satisfied_terms(c, doc) for c in node.children))
    return set()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(queries(), min_size=1, max_size=5),
    st.lists(st.tuples(text, text), max_size=10),
    st.integers(1, 2 * NUMPY_FROM),  # copies: reach both the Python and the numpy path
)
def test_hits_come_from_satisfied_clauses(query_texts, paper_specs, copies) -> None:
    papers = [
        Paper(
            id=f"p{i:03d}",
            title=t,
            abstract=a,
            upvotes=i % 5,
            published=date(2026, 11, 1 + i % 20),
            first_seen=datetime(2026, 11, 25, tzinfo=UTC),
        )
        for i, (t, a) in enumerate(paper_specs * copies)
    ]
    profiles = {i: compile_profile(q) for i, q in enumerate(query_texts)}
    limits = {i: Limits(len(papers) or 1) for i in profiles}
    fast = match_all(profiles, papers, limits, Weights())
    slow = match_all_naive(profiles, papers, limits, Weights())
    docs = {p.id: analyse_paper(p) for p in papers}
    for key, profile in profiles.items():
        matched = {p.id for p in papers if profile.root.test(docs[p.id])}
        assert {m.paper_id for m in fast[key]} == matched
        assert fast[key] == slow[key]  # the same papers, scores and hits, in order
        for m in fast[key]:
            live = satisfied_terms(profile.root, docs[m.paper_id])
            # a term written twice is reported under its first label
            allowed = {t.label for t in profile.terms if t.key in live}
            assert {h.term for h in m.hits} <= allowed, (profile.text, m.paper_id)
