"""The matcher seam: profiles as typed values with a kind, built from a stored row
(lenient) or from input (strict), ranked by `rank` exactly as the keyword index ranks
them, and an unknown kind refused clearly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import pytest
from conftest import settings_with

from digest import store
from digest.config import Settings
from digest.errors import QueryError
from digest.matching import (
    KeywordQuery,
    Limits,
    Profile,
    ProfileKindError,
    Weights,
    compile_profile,
    compile_stored,
    match_all,
    profile_from_input,
    profile_of,
    rank,
    topic_named,
)
from digest.matching.matcher import RANKERS
from digest.models import Paper
from digest.preview import sample_papers
from digest.subscriptions import new_subscriber
from digest.web.topics import Topic, split_profile

# Stored before the language had operators: an unclosed '(' no longer parses.
LEGACY = "robot learning (sim2real, diffusion policy"


@pytest.fixture(scope="module")
def papers() -> list[Paper]:
    return sample_papers()


def stored_row(engine, settings: Settings, email: str, keywords: str, **fields: object):
    """A subscriber row as the database holds it (written without validation, as an
    older release may have written it), read back through the store."""
    row = new_subscriber(settings, email, "placeholder", **fields)
    row.keywords = keywords
    store.add_subscriber(engine, row)
    found = store.get_subscriber(engine, email)
    assert found is not None
    return found


# ---------------------------------------------------------------- profiles


def test_a_profile_is_derived_from_a_stored_row(engine, settings: Settings) -> None:
    row = stored_row(engine, settings, "a@example.org", "diffusion, robot*", max_papers=7)
    profile = profile_of(row)
    assert profile.parts == (
        KeywordQuery("diffusion, robot*", compile_profile("diffusion, robot*")),
    )
    assert profile.parts[0].kind == "keywords"
    assert profile.limits == Limits(7, None)
    assert profile.describe() == compile_profile("diffusion, robot*").describe()


def test_stored_rows_are_read_leniently_input_strictly(engine, settings: Settings) -> None:
    with pytest.raises(QueryError) as err:
        profile_from_input(LEGACY)
    assert err.value.position == LEGACY.index("(")
    row = stored_row(engine, settings, "old@example.org", LEGACY)
    part = profile_of(row).parts[0]
    assert isinstance(part, KeywordQuery)
    assert part.text == LEGACY  # the row is not rewritten
    assert part.query.describe() == compile_stored(LEGACY).describe()
    assert "sim2real" in part.describe()


def test_a_stored_profile_with_nothing_searchable_matches_nothing(
    engine, settings: Settings, papers: list[Paper]
) -> None:
    row = stored_row(engine, settings, "empty@example.org", '"" , ((')
    assert rank({1: profile_of(row)}, papers) == {1: []}
    with pytest.raises(QueryError):
        profile_from_input('"" , ((')


def test_profile_needs_a_part_and_limits_can_change() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        Profile(())
    profile = profile_from_input("diffusion", max_papers=3, min_score=1.5)
    assert profile.limits == Limits(3, 1.5)
    assert profile.with_limits(50).limits == Limits(50, None)
    assert profile.with_limits(50).parts == profile.parts


def test_weights_come_from_settings(settings: Settings) -> None:
    assert Weights.from_settings(settings) == Weights()
    changed = settings_with(settings, weight_title=9.0, weight_recency=0.0)
    assert Weights.from_settings(changed) == Weights(title=9.0, recency=0.0)


# ---------------------------------------------------------------- rank


@pytest.mark.parametrize(
    "text, limits",
    [
        ("*", Limits(5)),
        ("diffusion, robot*", Limits(20)),
        ('(LLM OR "language model") AND reasoning -survey', Limits(10, 2.0)),
        ("topic:robot-learning", Limits(3)),
        ("model* -diffusion", Limits(1000)),
        ("quasar", Limits(20)),
    ],
)
def test_rank_gives_what_the_old_idiom_gave(
    settings: Settings, papers: list[Paper], text: str, limits: Limits
) -> None:
    weights = Weights.from_settings(settings_with(settings, weight_abstract=1.25))
    old = match_all({0: compile_profile(text)}, papers, {0: limits}, weights)[0]
    new = rank({0: profile_from_input(text, limits.max_papers, limits.min_score)}, papers, weights)
    assert new == {0: old}
    assert [m.why() for m in new[0]] == [m.why() for m in old]


def test_rank_keeps_the_callers_keys_for_many_subscribers(papers: list[Paper]) -> None:
    texts = {101: "diffusion", 7: "robot*", 55: "diffusion", 3: "nothing-here-xyz"}
    profiles = {k: profile_from_input(t, max_papers=k % 10 + 1) for k, t in texts.items()}
    got = rank(profiles, papers)
    old = match_all(
        {k: compile_profile(t) for k, t in texts.items()},
        papers,
        {k: p.limits for k, p in profiles.items()},
    )
    assert list(got) == list(texts) and got == old
    assert got[3] == []
    assert rank(profiles, []) == {k: [] for k in texts}


@dataclass(frozen=True)
class Interest:
    """A kind no ranker is registered for (yet)."""

    kind: ClassVar[str] = "interest"
    text: str

    def describe(self) -> str:
        return self.text


def test_an_unknown_kind_is_a_clear_error(papers: list[Paper]) -> None:
    known = profile_from_input("diffusion")
    with pytest.raises(ProfileKindError, match="no ranker for profile part kind 'interest'"):
        rank({1: known, 2: Profile((Interest("reward models"),))}, papers)
    both = Profile((*known.parts, Interest("reward models")))
    with pytest.raises(ProfileKindError, match="several parts"):
        rank({1: both}, papers)


def test_a_ranker_registered_for_a_new_kind_needs_no_caller_change(papers: list[Paper]) -> None:
    def by_length(parts, limits, papers, weights):
        return {k: [] for k in parts}

    rankers = {**RANKERS, Interest: by_length}
    got = rank(
        {1: Profile((Interest("x"),)), 2: profile_from_input("diffusion")},
        papers,
        rankers=rankers,
    )
    assert got[1] == [] and got[2] == rank({2: profile_from_input("diffusion")}, papers)[2]


# ---------------------------------------------------------------- topic terms

OLD_TOPIC_TERM = re.compile(r"^topic:([A-Za-z0-9][A-Za-z0-9_.-]{0,63})$", re.IGNORECASE)


@pytest.mark.parametrize(
    "part",
    [
        "topic:robot-learning",
        "TOPIC:robot-learning",
        "Topic:robot-learning",
        "topic:Robot-Learning",
        "topic: robot-learning",
        'topic:"robot-learning"',
        "topic:(robot-learning)",
        "(topic:robot-learning)",
        "-topic:robot-learning",
        "topic:robot-learning AND diffusion",
        "topic:robot-learning topic:robot-learning",
        "topic:no-such-topic",
        "topic:",
        "topic:robot*",
        "diffusion",
        "((",
        "",
    ],
)
def test_topic_terms_are_found_by_the_parser_as_the_regex_found_them(part: str) -> None:
    known = {"robot-learning"}
    m = OLD_TOPIC_TERM.match(part)
    old = m.group(1) if m and m.group(1) in known else None
    assert topic_named(part) == old
    catalogue = [Topic("robot-learning", "Robot learning")]
    expected = ("", [old]) if old else (part.strip(), [])
    if "topic:" in part.lower():
        assert split_profile(part, catalogue) == expected
