"""A plain-English interest as a profile part: what it is about, what it rules out,
and the example papers the subscriber liked or disliked.

"I work on reward models and preference optimisation for aligning LLMs; not
interested in jailbreaks" is read as a topic ("I work on reward models and preference
optimisation for aligning LLMs") and exclusions (`jailbreaks`). An exclusion is a
clause that starts with one of the cues below and runs to the end of its sentence;
its items are split on "or", "and", commas and slashes. The topic is what remains,
so an exclusion's words never count *for* a paper. How exclusions are honoured is
the ranker's business (`interests.py`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from digest.matching.lexical import BIGRAM_WEIGHT, QUERY_DROP, bigrams, query_terms, terms

if TYPE_CHECKING:  # annotations only: checking an interest needs no numpy
    import numpy as np

MAX_INTEREST_CHARS = 4000
MAX_EXAMPLES = 200

# Where an exclusion starts: strong cues anywhere in a sentence, weak ones ("no X",
# "not X") only at its start or after a comma ("little or no memory" is a topic).
_STRONG = (
    r"(?:i am |i'm |im )?not (?:really |very |so )?(?:interested|keen) (?:in|on)",
    r"(?:i am |i'm |im )?not (?:after|looking for|into)",
    r"i (?:do not|don't|dont) (?:care|want) (?:about|for)?",
    r"(?:but|and) not",
    r"except(?: for)?",
    r"excluding",
    r"nothing (?:on|about)",
)
_WEAK = (r"(?:please )?(?:no|not(?! only)|skip|ignore|exclude|avoid)",)
_CUE = re.compile(
    r"(?:(?:^|(?<=[\s(]))(?:" + "|".join(_STRONG) + r")"
    r"|(?:^\s*|(?<=,)\s*)(?:" + "|".join(_WEAK) + r"))\b\s*",
    re.IGNORECASE,
)
# "X is not my thing", "X are a different topic for me": the subject is excluded.
_AFTER = re.compile(
    r"^(?P<what>.+?)\s+(?:is|are)\s+(?:not my thing|not for me|out of scope|"
    r"a different (?:topic|thing|story)(?: for me)?|not (?:of )?interest(?:ing)?(?: to me)?|"
    r"not relevant(?: to me)?|not what i want)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.;!?\n]+[.;!?\n]*")
_SPLIT = re.compile(r"\s*(?:,|/|\bor\b|\band\b|\bnor\b)\s*", re.IGNORECASE)
_FILLER = re.compile(
    r"^(?:(?:any|the|a|an|anything|papers?|work|stuff|things?|about|on|in|with|of|"
    r"more|other|pure|purely|general|generic)\s+)+|"
    r"(?:\s+(?:please|thanks|thank you|papers?|work|stuff|research|either|at all|"
    r"topics?|etc))+$",
    re.IGNORECASE,
)
# An "exclusion" this short or this generic is a slip of grammar, not a topic.
_NOT_TOPICS = frozenset({"", "only", "just", "much", "too", "so", "very", "really", "a lot"})


def split_interest(text: str) -> tuple[str, tuple[str, ...]]:
    """(the topic text, the exclusion items) of an interest sentence."""
    kept: list[str] = []
    excluded: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE.findall(text)):
        after = _AFTER.match(sentence)
        if after is not None:
            excluded.extend(i for i in map(_clean, _SPLIT.split(after["what"])) if i)
            continue
        cue = _CUE.search(sentence)
        if cue is None:
            kept.append(sentence)
            continue
        items = [_clean(i) for i in _SPLIT.split(sentence[cue.end() :])]
        items = [i for i in items if i.lower() not in _NOT_TOPICS]
        if not items:  # "not only X but Y": a cue with no topic after it
            kept.append(sentence)
            continue
        kept.append(sentence[: cue.start()])
        excluded.extend(items)
    topic = " ".join(" ".join(kept).split())
    return topic.strip(" ,;:-"), tuple(dict.fromkeys(excluded))


def _clean(item: str) -> str:
    item = " ".join(item.strip(" .;:!?()\"'").split())
    previous = None
    while previous != item:
        previous, item = item, _FILLER.sub("", item).strip(" .,;:!?")
    return item


@dataclass(frozen=True)
class Interest:
    """A plain-English interest and example papers: the second kind of profile part.

    `text` is what the subscriber wrote (may be empty when they gave only examples);
    `topic` and `exclusions` are read from it (`split_interest`); `liked` and
    `disliked` are arXiv ids, whether or not those papers are stored yet (one that
    arrives later is used from then on). `vector` is the topic's stored embedding when
    the caller has it (computed once, when the profile was saved); without it the
    ranker embeds `topic` itself. Build it with `Interest.of`.
    """

    kind: ClassVar[str] = "interest"
    text: str
    topic: str
    exclusions: tuple[str, ...] = ()
    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()
    vector: np.ndarray | None = field(default=None, compare=False, hash=False, repr=False)
    # Analysed once, when the profile is built (not per edition): the topic's BM25
    # words (each once) and their weights, side by side (ranking reads them as flat
    # runs for a whole block of profiles); its pairs of adjacent words ("a b"), their
    # weights and, two per pair, the positions of their words in `words` (so ranking
    # finds a pair's term from its words' ids, without a lookup by string); and each
    # exclusion's words.
    words: tuple[str, ...] = field(default=(), compare=False, repr=False)
    weights: tuple[float, ...] = field(default=(), compare=False, repr=False)
    pairs: tuple[str, ...] = field(default=(), compare=False, repr=False)
    pair_weights: tuple[float, ...] = field(default=(), compare=False, repr=False)
    pair_at: tuple[int, ...] = field(default=(), compare=False, repr=False)
    excluded_words: tuple[tuple[str, ...], ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def of(
        cls,
        text: str | None,
        liked: tuple[str, ...] | list[str] = (),
        disliked: tuple[str, ...] | list[str] = (),
        vector: np.ndarray | None = None,
    ) -> Interest:
        clean = " ".join((text or "").split())[:MAX_INTEREST_CHARS]
        topic, exclusions = split_interest(clean)
        like = tuple(dict.fromkeys(liked))[:MAX_EXAMPLES]
        dislike = tuple(i for i in dict.fromkeys(disliked) if i not in like)[:MAX_EXAMPLES]
        counted = Counter(query_terms(topic))
        words, weights = tuple(counted), tuple(float(c) for c in counted.values())
        paired = Counter(bigrams(topic, QUERY_DROP))  # both words are in `words`
        at = {w: i for i, w in enumerate(words)}
        return cls(
            clean,
            topic,
            exclusions,
            like,
            dislike,
            vector,
            words,
            weights,
            tuple(paired),
            tuple(BIGRAM_WEIGHT * c for c in paired.values()),
            tuple(at[w] for pair in paired for w in pair.split(" ")),
            tuple(t for t in (tuple(terms(e)) for e in exclusions) if t),
        )

    def with_examples(self, liked: tuple[str, ...], disliked: tuple[str, ...]) -> Interest:
        """The same interest with more example papers (ratings from the email)."""
        return Interest.of(self.text, self.liked + liked, self.disliked + disliked, self.vector)

    @property
    def empty(self) -> bool:
        return not self.topic and not self.liked

    def describe(self) -> str:
        out = []
        if self.topic:
            out.append(f"interest: {self.topic!r}")
        if self.exclusions:
            out.append("excluding " + ", ".join(repr(e) for e in self.exclusions))
        if self.liked:
            out.append(f"like {len(self.liked)} example paper(s)")
        if self.disliked:
            out.append(f"less like {len(self.disliked)} paper(s)")
        return "; ".join(out) or "interest: (empty)"
