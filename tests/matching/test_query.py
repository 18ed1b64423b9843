"""The profile language: every construct, the analysis (stemming, synonyms, folding),
error positions and limits."""

from __future__ import annotations

import time

import pytest

from digest.errors import QueryError
from digest.matching import compile_profile
from digest.matching.naive import match_all_naive
from digest.matching.query import MAX_DEPTH, MAX_QUERY_CHARS, MAX_TERMS, compile_stored
from digest.matching.text import stem, tokens
from digest.matching.topics import load_catalogue
from digest.models import Paper


def paper(pid: str = "p1", title: str = "", abstract: str = "", **kw: object) -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, **kw)


def matches(query: str, p: Paper) -> bool:
    profile = compile_profile(query)
    return bool(match_all_naive({0: profile}, [p])[0])


def error(query: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        compile_profile(query)
    return info.value


# ---------------------------------------------------------------- constructs

DIFFUSION = paper(title="Diffusion policies for robots", abstract="We study robotic grasping.")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("diffusion", True),
        ("transformer", False),
        ("transformer, diffusion", True),  # a list is an OR
        ("transformer OR diffusion", True),
        ("diffusion AND grasping", True),  # AND across title and abstract
        ("diffusion AND transformer", False),
        ("diffusion grasping", True),  # side by side: implicit AND
        ("diffusion transformer", False),
        ('"diffusion policies"', True),  # phrase: words in order
        ('"policies diffusion"', False),
        ("diffusion -grasping", False),  # leading - excludes
        ("diffusion NOT grasping", False),
        ("diffusion -transformer", True),
        ("-transformer", True),  # a pure exclusion matches the rest
        ("NOT diffusion", False),
        ("(transformer OR robot*) AND NOT survey", True),
        ("robot*", True),  # prefix: robots, robotic
        ("grasp*", True),
        ("title:diffusion", True),
        ("abstract:diffusion", False),
        ("title:grasping", False),
        ("abstract:(grasping OR transformer)", True),
        ("*", True),
        ("* -diffusion", False),
        ("and", False),  # lower-case operators are plain words
    ],
)
def test_constructs(query: str, expected: bool) -> None:
    assert matches(query, DIFFUSION) is expected


def test_author_category_and_keyword_fields() -> None:
    p = paper(
        title="A model",
        authors=["Bernhard Schölkopf", "Yann LeCun"],
        categories=["cs.LG", "stat.ML"],
        ai_keywords=["world models", "self-supervised learning"],
    )
    assert matches('author:"Bernhard Schölkopf"', p)
    assert matches("author:scholkopf", p)  # accents folded
    assert matches("author:lecun", p)
    assert not matches('author:"Schölkopf Yann"', p)  # never across two authors
    assert not matches("author:hinton", p)
    assert matches("cat:cs.LG", p)
    assert matches("cat:CS.lg", p)  # case-insensitive
    assert matches("cat:stat.*", p)
    assert matches("cat:cs", p)  # an archive alone means all its categories
    assert not matches("cat:cs.CV", p)
    assert not matches("cat:math", p)
    assert matches('keyword:"world model"', p)
    assert matches("keyword:self-supervised", p)
    assert not matches("keyword:model", paper(title="model"))  # keywords only
    assert not matches("model", paper(title="x", ai_keywords=["model"]))  # title/abstract only


def test_topics_are_queries_labelled_with_their_name() -> None:
    catalogue = load_catalogue()
    assert len(catalogue) >= 25
    for required in ("llm-reasoning", "diffusion-models", "robot-learning", "speech", "ai-safety"):
        assert required in catalogue
    for name in catalogue:
        compile_profile(f"topic:{name}")  # every bundled topic compiles
    p = paper(title="Denoising diffusion for video")
    profile = compile_profile("topic:diffusion-models")
    [match] = match_all_naive({0: profile}, [p])[0]
    assert {h.topic for h in match.hits} == {"diffusion-models"}
    assert "topic:diffusion-models" in match.why()


# ---------------------------------------------------------------- analysis


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("model", "Models of the world"),
        ("models", "a model"),
        ("transformer", "Transformers are all you need"),
        ("study", "two studies"),
        ("process", "Gaussian processes"),
        ("approach", "new approaches"),
        ("cache", "KV caches"),
        ("bias", "gender biases"),
        ("chain-of-thought", "chain of thought prompting"),
        ('"chain of thought"', "Chain-of-Thought prompting"),
        ("multi-agent", "multiagent systems"),  # via the synonym table
        ("LLM", "large language models are"),
        ('"large language models"', "We fine-tune an LLM"),
        ("LLMs", "a large language model"),
        ("RL", "reinforcement learning from scratch"),
        ('"reinforcement learning"', "deep RL agents"),
        ('"LLM reasoning"', "large language model reasoning"),
        ("naïve", "a naive baseline"),  # accents folded
        ("STRASSE", "Straße"),  # case folding
        ("ﬁne-tuning", "fine tuning"),  # compatibility forms
    ],
)
def test_stemming_synonyms_and_folding(query: str, text: str) -> None:
    assert matches(query, paper(abstract=text)), (query, text)


def test_word_boundaries() -> None:
    assert not matches("art", paper(title="state of the artwork"))
    assert not matches("rl", paper(title="world"))
    assert not matches("gan", paper(title="organ"))


def test_stem_and_tokens() -> None:
    assert stem("models") == "model"
    assert stem("analysis") == "analysis"
    assert stem("gas") == "gas"
    assert tokens("GPT-4o, Chain_of Thought!") == ["gpt", "4o", "chain", "of", "thought"]


# ---------------------------------------------------------------- errors and limits


@pytest.mark.parametrize(
    ("query", "position", "fragment"),
    [
        ('diffusion, "open', 11, "quote"),
        ("diffusion AND", 10, "AND needs a term after"),
        ("AND diffusion", 0, "AND needs a term before"),
        ("a OR", 2, "OR needs a term after"),
        ("(a OR b", 0, "never closed"),
        ("a) b", 1, "no '('"),
        ("()", 0, "empty"),
        ("a - b", 2, "'-' must be followed"),
        ("foo:bar", 0, "unknown field"),
        ("title:", 0, "needs a word"),
        ("x *robot", 2, "'*' may only end"),
        ("ro*", 0, "at least 3 letters"),
        ("a*", 0, "at least 3 letters"),
        ("x, !!!", 3, "no letters or digits"),
        ("topic:nope", 6, "unknown topic"),
        ("diffusion topic:nope", 16, "unknown topic"),
        ("cat:c*s", 5, "only end a category"),
        ("cat:<b>", 4, "not an arXiv category"),
        ("title:*", 6, "not allowed"),
        ("NOT", 0, "NOT needs"),
        ("", 0, "empty"),
        (" , ,", 0, "empty"),
        ('"  "', 0, "no letters or digits"),
    ],
)
def test_errors_point_at_the_cause(query: str, position: int, fragment: str) -> None:
    exc = error(query)
    assert fragment in str(exc)
    assert exc.position == position
    assert exc.query == query


def test_error_positions_inside_phrases_are_absolute() -> None:
    exc = error('diffusion, "robot *learning"')
    assert exc.position == 18  # the "*" itself
    exc = error('x, y, "a* b"')
    assert exc.position == 7


def test_error_message_shows_a_caret() -> None:
    text = str(error("diffusion AND (robot OR"))
    assert "^" in text and "diffusion AND (robot OR" in text


def test_limits_fail_fast() -> None:
    started = time.monotonic()
    huge = "a" * 100_000
    assert "too long" in str(error(huge))
    many_or = " OR ".join(f"term{i}" for i in range(10_000))
    assert "too long" in str(error(many_or))
    commas = ",".join("ab" for _ in range(MAX_TERMS + 1))
    assert len(commas) <= MAX_QUERY_CHARS
    exc = error(commas)
    assert "too many terms" in str(exc) and exc.position == 3 * MAX_TERMS
    deep = "(" * 1500 + "a" + ")" * 1500
    exc = error(deep)
    assert "nested too deeply" in str(exc) and exc.position == MAX_DEPTH
    assert "nested too deeply" in str(error("NOT " * 500 + "a"))
    assert "nested too deeply" in str(error("-" * 3000 + "a"))
    assert time.monotonic() - started < 2.0
    compile_profile("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)  # the limit itself is fine


def test_hostile_text_is_only_words() -> None:
    profile = compile_profile('<script>alert(1)</script>, "a\r\nb", x.+?[]{}|^$\\y')
    assert profile.terms  # parsed as plain words, no regex anywhere
    assert matches("<b>diffusion</b>", DIFFUSION) is False  # 'b' AND diffusion AND 'b'


def test_stored_profiles_from_before_the_language_still_work() -> None:
    legacy = compile_stored("Re: transformers, foo:bar")
    assert [t.label for t in legacy.terms] == ["Re: transformers", "foo:bar"]
    assert compile_stored("(((").terms == ()  # nothing to search: matches nothing


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


def test_a_phrase_has_a_word_limit() -> None:
    # A 1,300-word phrase cost ~0.16 s per paper whose abstract nearly repeats it.
    from digest.matching.query import MAX_PHRASE_WORDS

    compile_profile('"' + " ".join(["lm"] * MAX_PHRASE_WORDS) + '"')
    with pytest.raises(QueryError) as caught:
        compile_profile('diffusion, "' + " ".join(["lm"] * (MAX_PHRASE_WORDS + 1)) + '"')
    assert caught.value.position == 11 and "at most" in str(caught.value)
