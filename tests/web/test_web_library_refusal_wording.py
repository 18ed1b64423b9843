"""The upload refusal counted titles without minding the number: "none of its 1
titles is among the papers we have"."""

from __future__ import annotations

import pytest

from digest.errors import InputError
from digest.web.uploads import merge_library


@pytest.mark.parametrize(
    ("entries", "wording"),
    [
        (1, "and its one title is not among the papers we have"),
        (3, "and none of its 3 titles is among the papers we have"),
    ],
)
def test_the_refusal_counts_titles_in_plain_words(engine, entries, wording):
    data = "".join(f"@misc{{k{i}, title={{Paper {i}}}}}\n" for i in range(entries))
    with pytest.raises(InputError) as caught:
        merge_library(engine, data.encode(), "refs.bib", [])
    assert wording in str(caught.value), str(caught.value)
