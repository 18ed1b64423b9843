"""A profile (or one of its comma/OR alternatives) made only of exclusions matches
every other paper: `-survey` alone is a flood, and `diffusion, -survey` is not
"diffusion without surveys" but "diffusion, or anything that is not a survey". It is
valid, so it is kept, but warned about like a lower-case `and`."""

from __future__ import annotations

import json

import pytest

from digest.matching import query_warnings

ONLY_NOT = "'-survey' alone matches every paper without it"


@pytest.mark.parametrize(
    "query", ["-survey", "NOT survey", "diffusion, -survey", "LLM OR (-survey -review)"]
)
def test_an_alternative_of_only_exclusions_is_warned_about(query: str) -> None:
    [warning] = query_warnings(query)
    assert "matches every paper without" in warning and "* -" in warning


def test_no_paper_at_all_and_a_topic_are_named_as_written() -> None:
    assert query_warnings("LLM -*") == ["'NOT *' matches no paper at all"]
    assert query_warnings("-topic:speech")[0].startswith("'-topic:speech' alone matches")


@pytest.mark.parametrize(
    "query",
    [
        "NOT NOT survey",
        "diffusion -survey",
        "* -survey",
        "(LLM OR VLM) -survey",
        "title:x NOT y",
        "x, y",
    ],
)
def test_exclusions_that_narrow_something_are_not(query: str) -> None:
    assert query_warnings(query) == []


def test_subscribe_and_check_query_say_so_on_stderr(cli) -> None:
    res = cli("subscribe", "ada@example.org", "--keywords", "-survey")
    assert res.code == 0, res.stderr
    assert ONLY_NOT in res.stderr
    [stored] = json.loads(cli("subscribers", "--json").stdout)
    assert stored["keywords"] == "-survey"  # kept as typed
    checked = cli("check-query", "-survey", "--json")
    assert checked.code == 0, checked.stderr
    assert json.loads(checked.stdout) == []  # no papers stored: stdout stays the list
    assert ONLY_NOT in json.loads(checked.stderr)["warnings"][0]
