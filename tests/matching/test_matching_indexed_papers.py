"""`IndexedPapers`: ranking a prepared paper set again and again (the web preview)
answers exactly what ranking the plain list does, and builds its index only once."""

from __future__ import annotations

import pytest

from digest.matching import IndexedPapers, Weights, profile_from_input, rank
from digest.preview import sample_papers

QUERIES = [
    '"reinforcement learning" AND robot*, diffusion',
    "diffusion -video",
    '(agent* OR planning) AND "language model"',
    "model*",
]


@pytest.fixture(scope="module")
def papers():
    return sample_papers()


def answer(profile_text: str, papers) -> list[tuple[str, float, str]]:
    profile = profile_from_input(profile_text).with_limits(len(papers))
    return [(m.paper_id, m.score, m.why()) for m in rank({0: profile}, papers)[0]]


def test_ranking_a_prepared_set_answers_as_the_plain_list(papers):
    prepared = IndexedPapers(papers)
    for text in QUERIES * 2:  # the second round reuses the index and its term caches
        assert answer(text, prepared) == answer(text, papers), text
    assert prepared.builds == 1


def test_other_weights_get_their_own_index(papers):
    prepared = IndexedPapers(papers)
    profile = profile_from_input("diffusion").with_limits(len(papers))
    heavy = Weights(title=30.0)
    first = rank({0: profile}, prepared, heavy)[0]
    assert [m.score for m in first] == [m.score for m in rank({0: profile}, papers, heavy)[0]]
    rank({0: profile}, prepared)
    assert prepared.builds == 2
