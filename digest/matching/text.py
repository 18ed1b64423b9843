"""Text analysis shared by queries, papers and highlighting.

Both sides of a match go through the same steps, so they agree by construction:
split into words (letters and digits; `-`, `_`, punctuation and spaces all separate,
so `chain-of-thought` = `chain of thought`), fold (Unicode NFKD, accents dropped,
case-folded) and stem lightly (plural endings only, see `stem`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

# Invisible format characters (Unicode Cf): soft hyphen, zero-width space and joiners,
# word joiner, BOM, bidi controls. Text pasted from a PDF or a web page carries them
# inside words; they join a word rather than split it, and `fold` drops them.
_INVISIBLE = "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
# A word: letters or digits, with any combining marks that decorate them.
_WORD = re.compile(
    r"[^\W_](?:[^\W_]|[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff" + _INVISIBLE + r"])*"
)

# -ches words whose singular keeps the final e (cache/caches, not approach/approaches).
_CHE_SINGULARS = frozenset({"cache", "niche", "ache", "headache", "avalanche", "moustache"})


@lru_cache(maxsize=1 << 16)
def fold(word: str) -> str:
    """Case-fold and strip accents and invisible format characters, so `Schölkopf` =
    `scholkopf`, `ﬁne` = `fine` and `trans\u00adformer` (a soft hyphen) = `transformer`."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word)
    kept = (
        c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
    )
    return "".join(kept).casefold()


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light, predictable plural stemmer: `models`->`model`, `studies`->`study`,
    `processes`->`process`, `LLMs`->`llm`. Deliberately no -ing/-ed rules: those
    merge words researchers keep apart (`learning` vs `learned`)."""
    n = len(word)
    if n <= 3 or not word.endswith("s") or not word.isalpha():
        return word
    if word.endswith("ies") and n > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zzes", "shes")):
        return word[:-2]
    if word.endswith("ches"):
        return word[:-1] if word[:-1] in _CHE_SINGULARS else word[:-2]
    if word.endswith("iases"):
        return word[:-2]
    if word.endswith(("ss", "us", "is", "ias")):
        return word
    return word[:-1]


def words(text: str) -> Iterator[tuple[str, int, int]]:
    """Folded words of `text` with their character span in the original text."""
    for m in _WORD.finditer(text):
        folded = fold(m.group())
        if folded.isalnum():
            yield folded, m.start(), m.end()
        else:  # folding produced separators (e.g. a fraction): split again
            for sub in _WORD.finditer(folded):
                yield sub.group(), m.start(), m.end()


def tokens(text: str) -> list[str]:
    """Folded, unstemmed words."""
    if text.isascii():  # the common case, ten times faster: folding is lower()
        return _WORD.findall(text.lower())
    return [w for w, _, _ in words(text)]


def analyse(text: str) -> tuple[list[str], list[str]]:
    """(stems, folded words) of `text`, position by position."""
    raws = tokens(text)
    return [stem(w) for w in raws], raws
