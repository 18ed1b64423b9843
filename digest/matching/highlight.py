"""Which characters of a title or abstract to highlight for a match.

The spans come from the same analysis as matching (folding, stemming, synonyms,
prefixes), so `LLM` highlights "large language models" and `robot*` highlights
"Robotics", and they index the original text, untouched.

A text is analysed once (`TextSpans`) and the spans of each term label found in it
are remembered, so an edition that shows one paper to thousands of subscribers, each
with their own terms, tokenises it once and looks each term up once. `TextAnalysis`
holds those per text for a run (bounded); `highlight_spans` is the one-off form.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from functools import lru_cache

from digest.matching.model import Match
from digest.matching.nodes import Form, form_in
from digest.matching.query import label_forms as _label_forms
from digest.matching.text import analyse, stem, words

# Authors looked at for a followed name (the matcher saw them all; a card needs few).
AUTHOR_SCAN = 10_000

_TEXT_FIELDS = {"title", "abstract", "keyword"}


@lru_cache(maxsize=1 << 16)
def label_forms(label: str, synonyms: bool = True) -> tuple[Form, ...]:
    """`query.label_forms`, parsed once per label for the whole process (an edition
    looks the same few thousand labels up in every paper it shows)."""
    return _label_forms(label, synonyms)


def form_spans(
    form: Form, words: Sequence[tuple[str, int, int]], starts: Iterable[int] | None = None
) -> list[tuple[int, int]]:
    """Where `form` occurs in `words` ((folded word, start, end) each). `starts`
    (ascending) are the only positions it can begin at, when the caller has indexed
    them; every position by default. A word is stemmed only where a form's word is
    compared with it (`stem` is cached): a phrase looked for in an abstract does not
    stem its every word."""
    out = []
    n = len(form)
    for i in range(len(words) - n + 1) if starts is None else starts:
        if i + n > len(words):
            break
        for j, (text, prefix) in enumerate(form):
            raw = words[i + j][0]
            if not (raw.startswith(text) if prefix else stem(raw) == text):
                break
        else:
            out.append((words[i][1], words[i + n - 1][2]))
    return out


def text_labels(match: Match) -> list[str]:
    """The labels of `match`'s hits in text fields, once each, in hit order."""
    return list(dict.fromkeys(h.term for h in match.hits if h.field in _TEXT_FIELDS))


class TextSpans:
    """One text, split into analysed words once; the spans of each label found in it
    are computed on first request and kept (a label's spans never change)."""

    __slots__ = (
        "text", "_lower", "_word_list", "_starts", "_sorted", "_labels", "_merged",
        "_shown",
    )  # fmt: skip

    def __init__(self, text: str) -> None:
        self.text = text
        # ASCII text lower-cased, where a one-word prefix is found without splitting
        # the text into words (`_prefix_spans`)
        self._lower = text.lower() if text.isascii() else None
        self._word_list: list[tuple[str, int, int]] | None = None
        self._starts: dict[str, list[int]] | None = None
        self._sorted: tuple[list[str], dict[str, list[int]]] | None = None
        self._labels: dict[str, list[tuple[int, int]]] = {}
        self._merged: dict[str, tuple[tuple[int, int], ...]] = {}
        self._shown: dict[str, list[str]] = {}

    @property
    def words(self) -> list[tuple[str, int, int]]:
        """(folded word, start, end) for each word, on first need (an abstract looked
        at only for the words a prefix matched is never split into words)."""
        if self._word_list is None:
            self._word_list = _words_of(self.text)
        return self._word_list

    def label_spans(self, label: str) -> list[tuple[int, int]]:
        """Spans of `label` in the text, form by form as `label_forms` lists them."""
        spans = self._labels.get(label)
        if spans is None:
            spans = self._labels[label] = [
                span for form in label_forms(label) for span in self._form_spans(form)
            ]
        return spans

    def _form_spans(self, form: Form) -> list[tuple[int, int]]:
        """`form_spans(form, self.words)`, starting only where the first word can."""
        if not form:
            return form_spans(form, self.words)
        first, prefix = form[0]
        lower = self._lower
        if lower is not None:
            # ASCII text (most): most labels a card looks up are not in it at all,
            # which a look for what each word's matches start with tells. One word is
            # then found in the lower-cased text, with no splitting into words.
            if len(form) > 1:
                if not all(_start(text, is_prefix) in lower for text, is_prefix in form):
                    return []
            else:
                start = _start(first, prefix)
                if start not in lower:
                    return []
                if start and _ASCII_WORD_FULL(start):
                    found = _words_from(lower, start)
                    if prefix:
                        return found
                    return [(s, e) for s, e in found if stem(lower[s:e]) == first]
        if prefix:  # the words a prefix starts are a run of the distinct words sorted
            if self._sorted is None:
                self._sorted = self._word_positions()
            ordered, positions = self._sorted
            starts = []
            for at in range(bisect_left(ordered, first), len(ordered)):
                if not ordered[at].startswith(first):
                    break
                starts += positions[ordered[at]]
            starts.sort()
            if len(form) == 1:
                words_ = self.words
                return [(words_[i][1], words_[i][2]) for i in starts]
        else:
            if self._starts is None:  # where each stem is (no 4-tuple per word)
                self._starts = {}
                for i, word in enumerate(self.words):
                    self._starts.setdefault(stem(word[0]), []).append(i)
            starts = self._starts.get(first, [])
            if len(form) == 1:  # every start is a whole match
                words_ = self.words
                return [(words_[i][1], words_[i][2]) for i in starts]
        return form_spans(form, self.words, starts)

    def _word_positions(self) -> tuple[list[str], dict[str, list[int]]]:
        """The distinct words sorted, and where each occurs (sorting the words alone,
        not (word, position) pairs, keeps a long abstract cheap)."""
        positions: dict[str, list[int]] = {}
        for i, w in enumerate(self.words):
            positions.setdefault(w[0], []).append(i)
        return sorted(positions), positions

    def matched_texts(self, label: str) -> list[str]:
        """What `label` matched, as written (spaces made single), a capital that only
        starts a sentence dropped: `agent*` -> ["agents", "agent"]."""
        shown = self._shown.get(label)
        if shown is None:
            shown = self._shown[label] = []
            for start, end in self.label_spans(label):
                words_ = " ".join(self.text[start:end].split())
                if words_[:1].isupper() and words_[1:] == words_[1:].lower():
                    words_ = words_[0].lower() + words_[1:]
                shown.append(words_)
        return shown

    def spans(self, labels: Iterable[str]) -> tuple[tuple[int, int], ...]:
        """Character spans of the text that the labels cover, sorted and disjoint. Each
        label's own spans are kept sorted and merged, so the usual case (no label, or
        one, found in the text) is a lookup per label and no sorting."""
        if not self.text:
            return ()
        found = []
        for label in labels:
            spans = self._merged.get(label)
            if spans is None:
                spans = self._merged[label] = _merged(self.label_spans(label))
            if spans:
                found.append(spans)
        return _union(found)


Spans = tuple[tuple[int, int], ...]


class TextPair:
    """Two texts whose spans are always asked for together (a card's title and
    summary): each label's forms are looked up once for both and the spans in both
    kept, so a card looks each of its labels up once, not once per text."""

    __slots__ = ("first", "second", "_labels")

    def __init__(self, first: str, second: str) -> None:
        self.first, self.second = TextSpans(first), TextSpans(second)
        self._labels: dict[str, tuple[Spans, Spans]] = {}

    def spans(self, labels: Iterable[str]) -> tuple[Spans, Spans]:
        """`(first.spans(labels), second.spans(labels))`."""
        in_first, in_second = [], []
        for label in labels:
            found = self._labels.get(label)
            if found is None:
                found = self._labels[label] = self._label_spans(label)
            if found[0]:
                in_first.append(found[0])
            if found[1]:
                in_second.append(found[1])
        return _union(in_first), _union(in_second)

    def _label_spans(self, label: str) -> tuple[Spans, Spans]:
        first, second = self.first, self.second
        in_first: list[tuple[int, int]] = []
        in_second: list[tuple[int, int]] = []
        for form in label_forms(label):
            if first.text:
                in_first += first._form_spans(form)
            if second.text:
                in_second += second._form_spans(form)
        return _merged(in_first), _merged(in_second)


def _union(found: list[Spans]) -> Spans:
    """Several labels' merged spans in one, sorted and disjoint (the usual none or
    one without sorting)."""
    if len(found) <= 1:
        return found[0] if found else ()
    return _merged([span for spans in found for span in spans])


def _merged(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """`spans` sorted, overlapping and touching ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _words_of(text: str) -> list[tuple[str, int, int]]:
    """(folded word, start, end) for each word of `text`, as `words` gives them;
    ASCII text (most titles and summaries) in one pass over its lower-cased copy,
    where folding a word is lower-casing it and keeps every position."""
    if not text:
        return []
    if text.isascii():
        return [(m[0], m.start(), m.end()) for m in _ASCII_WORD.finditer(text.lower())]
    return list(words(text))


# `text._WORD` on lower-cased ASCII text, where it finds the same words (letters and
# digits; its combining marks are not ASCII) twice as fast.
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_ASCII_WORD_FULL = _ASCII_WORD.fullmatch


def _start(text: str, prefix: bool) -> str:
    """What every word a pattern matches starts with: a prefix itself, a stem less
    its last letter (`text.stem` only drops or rewrites a word's end:
    `studies` -> `study`)."""
    return text if prefix else text[:-1]


def _words_from(lower: str, start: str) -> list[tuple[int, int]]:
    """Spans of the words of lower-cased ASCII text that begin with `start` (itself
    letters and digits): the same as splitting the text into `_ASCII_WORD`s and
    keeping those, found by searching for `start` (a substring search, which a
    text without it, most, costs next to nothing)."""
    out = []
    at = lower.find(start)
    while at >= 0:
        if at and lower[at - 1] in _WORD_CHARS:  # inside a word
            at = lower.find(start, at + 1)
            continue
        word = _ASCII_WORD.match(lower, at)
        end = word.end() if word else len(lower)  # always a word: `start` is one
        out.append((at, end))
        at = lower.find(start, end)
    return out


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


class TextAnalysis:
    """`TextSpans` per text for one run, so each text is analysed once. Bounded: the
    memory is dropped whole when it holds `limit` texts (a run's papers fit)."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._texts: dict[tuple[str, int], TextSpans] = {}

    def of(self, text: str, scan: int = -1) -> TextSpans:
        """The analysis of `text` (of its first `scan` characters when given)."""
        key = (text, scan)
        spans = self._texts.get(key)
        if spans is None:
            if len(self._texts) >= self.limit:
                self._texts.clear()
            spans = self._texts[key] = TextSpans(text if scan < 0 else text[:scan])
        return spans


def highlight_spans(text: str, match: Match) -> list[tuple[int, int]]:
    """Character spans of `text` that made `match`, sorted and disjoint."""
    labels = text_labels(match)
    if not labels or not text:
        return []
    return list(TextSpans(text).spans(labels))


class AuthorNames:
    """A paper's author list analysed once (name by name), for `author:` terms; on
    the first such term, since most subscribers follow no author."""

    __slots__ = ("authors", "_fields", "_labels")

    def __init__(self, authors: Sequence[str]) -> None:
        self.authors = authors
        self._fields: list[tuple[list[str], list[str]]] | None = None
        self._labels: dict[str, list[int]] = {}

    @property
    def fields(self) -> list[tuple[list[str], list[str]]]:
        if self._fields is None:
            self._fields = [analyse(str(name)) for name in self.authors[:AUTHOR_SCAN]]
        return self._fields

    def named(self, labels: Iterable[str]) -> list[int]:
        """Positions of the names the `author:` terms `labels` find, in list order."""
        if not labels:
            return []
        found: set[int] = set()
        for label in dict.fromkeys(labels):
            positions = self._labels.get(label)
            if positions is None:
                forms = label_forms(label, False)
                positions = self._labels[label] = [
                    i
                    for i, field in enumerate(self.fields)
                    if any(form_in(form, field) for form in forms)
                ]
            found.update(positions)
        return sorted(found)


def labels_of(match: Match | None) -> tuple[list[str], list[str]]:
    """(`text_labels`, `author_labels`) of `match` in one pass over its hits (a card
    needs both for every subscriber who is shown it)."""
    if match is None:
        return [], []
    text: dict[str, None] = {}
    authors: list[str] = []
    for h in match.hits:
        field = h.field
        if field in _TEXT_FIELDS:
            text[h.term] = None
        elif field == "author":
            authors.append(h.term)
    return list(text), authors


def author_labels(match: Match | None) -> list[str]:
    return [h.term for h in match.hits if h.field == "author"] if match is not None else []


def matched_authors(authors: Sequence[str], match: Match | None) -> list[int]:
    """Positions in `authors` of the names an `author:` term of `match` found, so a
    card can always show (and mark) the person the subscriber follows, however long
    the list. Compared word by word the way matching compares them (one name at a
    time, never across two)."""
    if match is None:
        return []
    return authors_named(authors, author_labels(match))


def authors_named(authors: Sequence[str], labels: Sequence[str]) -> list[int]:
    """Positions in `authors` of the names the `author:` terms `labels` find."""
    if not labels:
        return []
    return AuthorNames(authors).named(labels)
