"""Matching and ranking: scores, limits, explanations, highlighting, and the index
agreeing with the naive evaluator (a hypothesis property test)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.matching import Hit, Limits, Match, Weights, compile_profile, highlight_spans, match_all
from digest.matching.index import NUMPY_FROM
from digest.matching.naive import match_all_naive
from digest.models import Paper


def paper(pid: str, title: str = "", abstract: str = "", **kw: object) -> Paper:
    kw.setdefault("published", date(2026, 11, 20))
    return Paper(id=pid, title=title, abstract=abstract, **kw)


def run(query: str, papers: list[Paper], limits: Limits | None = None, **weights: float):
    profiles = {"k": compile_profile(query)}
    lim = {"k": limits or Limits(50)}
    fast = match_all(profiles, papers, lim, Weights(**weights))["k"]
    assert fast == match_all_naive(profiles, papers, lim, Weights(**weights))["k"]
    return fast


# ---------------------------------------------------------------- ranking


def test_title_beats_abstract_and_rare_beats_common() -> None:
    papers = [
        paper("a", "Some robots", "diffusion here"),
        paper("b", "Diffusion for robots", "nothing"),
        paper("c", "Other", "diffusion and more diffusion"),
    ]
    assert [m.paper_id for m in run("diffusion", papers)] == ["b", "a", "c"]
    filler = [paper(f"f{i}", "model", "model") for i in range(20)]
    ranked = run("model, quasar", [*filler, paper("q", "x", "quasar")], recency=0)
    assert ranked[0].paper_id == "q"  # abstract-only, but rare beats a common title word


def test_popularity_and_recency_are_weights() -> None:
    papers = [
        paper("old", "diffusion", upvotes=400, published=date(2026, 11, 1)),
        paper("new", "diffusion", upvotes=0, published=date(2026, 11, 20)),
    ]
    assert run("diffusion", papers, popularity=1.0, recency=0.0)[0].paper_id == "old"
    assert run("diffusion", papers, popularity=0.0, recency=1.0)[0].paper_id == "new"


def test_star_is_the_trending_digest() -> None:
    papers = [paper(f"p{i}", f"paper {i}", upvotes=u) for i, u in enumerate([5, 50, 0, 500, 7])]
    ranked = run("*", papers, Limits(3), recency=0.0)
    assert [m.paper_id for m in ranked] == ["p3", "p1", "p4"]
    assert all(m.hits == [] for m in ranked)


def test_max_papers_min_score_and_deterministic_ties() -> None:
    papers = [paper(pid, "diffusion") for pid in ["z9", "a1", "m5", "b2"]]
    ranked = run("diffusion", papers, Limits(3))
    assert [m.paper_id for m in ranked] == ["a1", "b2", "m5"]  # equal scores: by id
    assert len({m.score for m in ranked}) == 1
    top = ranked[0].score
    assert run("diffusion", papers, Limits(10, min_score=top)) == run("diffusion", papers)
    assert run("diffusion", papers, Limits(10, min_score=top + 0.001)) == []
    assert run("diffusion", papers, Limits(0)) == []


def test_match_all_handles_many_subscribers_and_empty_inputs() -> None:
    papers = [paper(f"p{i}", "diffusion robots" if i % 2 else "speech") for i in range(40)]
    profiles = {i: compile_profile(q) for i, q in enumerate(["diffusion", "speech", "*", "-x"])}
    limits = {i: Limits(5 + i) for i in profiles}
    out = match_all(profiles, papers, limits, Weights())
    assert out == match_all_naive(profiles, papers, limits, Weights())
    assert [len(out[i]) for i in profiles] == [5, 6, 7, 8]
    assert match_all(profiles, [], limits, Weights()) == {i: [] for i in profiles}
    assert match_all({}, papers, {}, Weights()) == {}


# ---------------------------------------------------------------- explanations


def test_explanations_name_terms_fields_and_topics() -> None:
    papers = [
        paper(
            "p",
            "Robot learning with diffusion",
            "Large language models plan.",
            authors=["Ada Lovelace"],
            categories=["cs.RO"],
        )
    ]
    [m] = run("diffusion, robot*, LLM, author:lovelace, cat:cs.RO, -survey", papers)
    assert Hit("diffusion", "title") in m.hits
    assert Hit("robot*", "title") in m.hits
    assert Hit("LLM", "abstract") in m.hits
    assert Hit("lovelace", "author") in m.hits
    assert Hit("cs.RO", "category") in m.hits
    assert m.why() == "matched: diffusion, robot*, LLM, author:lovelace, cat:cs.RO"
    assert m.terms() == ["diffusion", "robot*", "LLM", "lovelace", "cs.RO"]
    data = m.to_json()
    assert (
        data["why"] == m.why()
        and {"term": "LLM", "field": "abstract", "topic": None} in data["hits"]
    )
    json.dumps(data)
    [t] = run("topic:robot-learning", papers)
    assert t.why().startswith("matched: topic:robot-learning (")
    assert all(h.topic == "robot-learning" for h in t.hits)


def test_negated_terms_never_explain() -> None:
    assert run("diffusion -(survey OR review)", [paper("p", "diffusion", "two reviews")]) == []
    [m] = run("diffusion NOT survey", [paper("p", "diffusion")])
    assert [h.term for h in m.hits] == ["diffusion"]


def test_a_match_built_by_hand_still_works() -> None:
    m = Match("x", 1.5, [Hit("a", "title")])
    assert m.why() == "matched: a" and m.terms() == ["a"]
    assert Match("y", 0.0).hits == [] and Match("y", 0.0).why() == ""


# ---------------------------------------------------------------- highlighting


def test_highlight_spans_follow_stemming_synonyms_prefixes() -> None:
    title = "Großes LLMs and Large Language Models for Robotics, naïve Transformers"
    [m] = run("LLM, robot*, transformer, naive", [paper("p", title)])
    spans = highlight_spans(title, m)
    assert [title[s:e] for s, e in spans] == [
        "LLMs",
        "Large Language Models",
        "Robotics",
        "naïve",
        "Transformers",
    ]
    assert highlight_spans("", m) == []
    assert highlight_spans("nothing here", m) == []


def test_highlight_ignores_author_and_category_hits() -> None:
    p = paper("p", "Lovelace on engines", authors=["Ada Lovelace"], categories=["cs.RO"])
    [m] = run("author:lovelace", [p])
    assert highlight_spans(p.title, m) == []


# ---------------------------------------------------------------- property


WORDS = ["diffusion", "models", "model", "robot", "robots", "robotic", "llm", "large",
         "language", "learning", "reinforcement", "rl", "speech", "safety", "chain", "of",
         "thought", "naïve", "survey"]  # fmt: skip
QUERY_WORDS = [*WORDS, "robot*", "learn*", "lang*", '"large language model"',
               '"chain-of-thought"', '"reinforcement learning"', "topic:speech",
               "author:ada", 'author:"ada lovelace"', "cat:cs.*", "cat:cs.lg", "cat:stat",
               "keyword:diffusion", "title:robot", "abstract:llm", "*"]  # fmt: skip


def queries() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(QUERY_WORDS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda t: f"{t[0]} AND {t[1]}"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}, {t[1]}"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]} {t[1]}"),
            inner.map(lambda q: f"-({q})"),
            inner.map(lambda q: f"NOT {q}"),
            inner.map(lambda q: f"({q})"),
        )

    return st.recursive(leaf, extend, max_leaves=8)


text = st.lists(st.sampled_from([*WORDS, "Robotics", "Models", "chain-of-thought", "the"]),
                max_size=12).map(" ".join)  # fmt: skip
papers_strategy = st.lists(
    st.builds(
        lambda title, abstract, authors, cats, kws, upvotes, day: (
            title,
            abstract,
            authors,
            cats,
            kws,
            upvotes,
            day,
        ),
        text,
        text,
        st.lists(st.sampled_from(["Ada Lovelace", "Alan Turing", "Grace Hopper"]), max_size=2),
        st.lists(st.sampled_from(["cs.LG", "cs.CL", "stat.ML", "math.OC"]), max_size=2),
        st.lists(st.sampled_from(["diffusion models", "robot learning", "llm"]), max_size=2),
        st.one_of(st.none(), st.integers(0, 500)),
        st.integers(1, 28),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(queries(), st.integers(0, 30), st.sampled_from([None, 0.5, 3.0])),
        min_size=1,
        max_size=6,
    ),  # fmt: skip
    papers_strategy,
    st.integers(1, 2 * NUMPY_FROM),  # copies: reach both the Python and the numpy path
)
def test_index_and_naive_agree(profiles_spec, paper_specs, copies) -> None:
    papers = [
        Paper(
            id=f"p{i % 7}-{i}",
            title=t,
            abstract=a,
            authors=au,
            categories=c,
            ai_keywords=k,
            upvotes=u,
            published=date(2026, 11, d),
            first_seen=datetime(2026, 11, 25, tzinfo=UTC),
        )
        for i, (t, a, au, c, k, u, d) in enumerate(paper_specs * copies)
    ]
    profiles = {i: compile_profile(q) for i, (q, _, _) in enumerate(profiles_spec)}
    limits = {i: Limits(n, floor) for i, (_, n, floor) in enumerate(profiles_spec)}
    fast = match_all(profiles, papers, limits, Weights())
    slow = match_all_naive(profiles, papers, limits, Weights())
    assert fast == slow
    for key, ranked in fast.items():
        assert [m.why() for m in ranked] == [m.why() for m in slow[key]]


def test_nan_or_huge_limits_behave_like_no_limit() -> None:
    papers = [paper(f"p{i:02d}", "diffusion") for i in range(30)]
    everything = run("diffusion", papers, Limits(500))
    assert len(everything) == 30
    assert run("diffusion", papers, Limits(500, float("nan"))) == everything
    assert run("diffusion", papers, Limits(500, float("-inf"))) == everything
    assert run("diffusion", papers, Limits(500, float("inf"))) == []


def test_many_matches_through_terms_that_match_nothing() -> None:
    # found by the property test: a numpy block whose terms add no scores at all
    papers = [paper(f"p{i:02d}", "diffusion", upvotes=i) for i in range(3 * NUMPY_FROM)]
    ranked = run("qqqq OR *", papers, Limits(5), recency=0.0)
    assert [m.paper_id for m in ranked] == ["p47", "p46", "p45", "p44", "p43"]


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
