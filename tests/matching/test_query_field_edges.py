"""Profile-language edges found in review: text right after a field name that the
word splitter would otherwise silently change the meaning of."""

from __future__ import annotations

import pytest

from digest.errors import QueryError
from digest.matching import compile_profile


def test_a_minus_after_a_field_is_refused_not_read_as_its_opposite(cli) -> None:
    # `title:-survey` reads like "title without survey"; the word splitter drops the
    # `-`, so it used to select exactly the papers with survey in the title.
    res = cli("check-query", "title:-survey")
    assert res.code == 2, res.stdout
    assert "Traceback" not in res.stderr
    assert "-title:survey" in res.stderr and "position 6" in res.stderr
    bad = cli("subscribe", "ada@example.org", "--keywords", "LLM author:-Smith")
    assert bad.code == 2 and "-author:Smith" in bad.stderr


@pytest.mark.parametrize("query", ["-title:survey", "title:(-survey)", 'title:"-survey"'])
def test_the_ways_to_write_an_exclusion_or_a_literal_still_parse(query: str) -> None:
    assert compile_profile(query).root is not None


def test_the_message_for_a_minus_after_a_field_points_at_the_minus() -> None:
    with pytest.raises(QueryError) as err:
        compile_profile("LLM cat:-cs.CL")
    assert err.value.position == 8
