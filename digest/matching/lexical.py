"""BM25 over a paper set's titles and abstracts, for plain-English interests.

The keyword language matches what a subscriber wrote exactly (plural stemming only);
an interest is a sentence, so here words are Snowball-stemmed (`hallucinations`,
`hallucinate` -> `hallucin`; British -isation spelt -ization first), stopwords and the
words people use to talk about their interests ("I work on", "papers") are dropped,
and the title counts twice (a field weight, BM25F-style). k1 and b are the usual
1.2 and 0.75.

An index holds each term's postings as arrays (paper index, weight), so scoring many
queries is one `bincount` over the concatenated postings of their terms, the way the
keyword index ranks many profiles.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import snowballstemmer

from digest.matching.text import tokens

K1 = 1.2
B = 0.75
TITLE_WEIGHT = 2

_STOP_TEXT = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into
    is it its itself just me more most my myself no nor not now of off on once only or
    other our ours out over own same she should so some such than that the their them
    then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours etc eg ie e g via
    using use based new toward towards within without across among along like especially
    mainly mostly particularly anything everything something things thing stuff
"""
STOPWORDS = frozenset(_STOP_TEXT.split())
# How people introduce an interest: not evidence of a topic.
_INTEREST_TEXT = """
    interested interest interests work working works research researching researcher
    study studying want wants would like love care cares caring papers paper articles
    article work lab group topic topics area areas field fields kind kinds sort sorts
    lot lots please thanks also anything everything particular especially mostly mainly
    focus focused focusing keen mostly related
"""
INTEREST_WORDS = frozenset(_INTEREST_TEXT.split())

_STEMMER = snowballstemmer.stemmer("english")
_ISE = re.compile(r"is(e|es|ed|ing|ation|ations|er|ers)$")


@lru_cache(maxsize=1 << 17)
def stem_word(word: str) -> str:
    """Snowball stem, with British -ise/-isation spelt -ize first (optimisation = optimization)."""
    if len(word) > 6 and _ISE.search(word):
        word = _ISE.sub(r"iz\1", word)
    return str(_STEMMER.stemWord(word))


def terms(text: str, drop: frozenset[str] = STOPWORDS) -> list[str]:
    """The stemmed content words of `text`, in order (repeats kept)."""
    return [stem_word(w) for w in tokens(text) if w not in drop and len(w) > 1]


def query_terms(text: str) -> list[str]:
    """The content words of an interest sentence (stopwords and interest talk dropped)."""
    return terms(text, STOPWORDS | INTEREST_WORDS)


def paper_terms(paper: Any) -> list[str]:
    """A paper's terms, the title's counted TITLE_WEIGHT times."""
    title = terms(getattr(paper, "title", "") or "")
    return title * TITLE_WEIGHT + terms((getattr(paper, "abstract", "") or "")[:20000])


class LexicalIndex:
    """BM25 postings of one paper set."""

    def __init__(self, papers: Sequence[Any]) -> None:
        self.n = len(papers)
        docs = [Counter(paper_terms(p)) for p in papers]
        lengths = np.array([sum(d.values()) for d in docs], dtype=np.float64)
        avg = float(lengths.mean()) if self.n and lengths.mean() > 0 else 1.0
        norm = K1 * (1 - B + B * lengths / avg)
        postings: dict[str, list[tuple[int, int]]] = {}
        for i, doc in enumerate(docs):
            for term, tf in doc.items():
                postings.setdefault(term, []).append((i, tf))
        self.idf: dict[str, float] = {}
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, plist in postings.items():
            df = len(plist)
            idf = math.log(1 + (self.n - df + 0.5) / (df + 0.5))
            idx = np.array([i for i, _ in plist], dtype=np.int64)
            freq = np.array([t for _, t in plist], dtype=np.float64)
            self.idf[term] = idf
            weight = idf * freq * (K1 + 1) / (freq + norm[idx])
            self.postings[term] = (idx, weight.astype(np.float32))
        self.doc_terms = [frozenset(d) for d in docs]

    def weights_of(self, words: Iterable[str]) -> dict[str, float]:
        """A query's known terms, each weighted by how often it was written."""
        return {t: float(c) for t, c in Counter(words).items() if t in self.postings}

    def score(self, query: Mapping[str, float]) -> np.ndarray:
        """BM25 of one weighted query against every paper."""
        out = np.zeros(self.n, dtype=np.float32)
        for term, w in query.items():
            idx, vals = self.postings[term]
            out[idx] += w * vals
        return out

    def score_many(
        self, queries: Sequence[Mapping[str, float]], binary: bool = False
    ) -> np.ndarray:
        """BM25 of many weighted queries (one row each), with one bincount; `binary`
        sums the query's weights of the terms a paper has instead."""
        n = self.n
        flat_idx: list[np.ndarray] = []
        flat_val: list[np.ndarray] = []
        for row, query in enumerate(queries):
            for term, w in query.items():
                idx, vals = self.postings[term]
                flat_idx.append(idx + row * n)
                if binary:
                    flat_val.append(np.full(len(idx), w, dtype=np.float32))
                else:
                    flat_val.append(vals * w if w != 1.0 else vals)
        if not flat_idx:
            return np.zeros((len(queries), n), dtype=np.float32)
        total = np.bincount(
            np.concatenate(flat_idx), np.concatenate(flat_val), minlength=len(queries) * n
        )
        return total.reshape(len(queries), n).astype(np.float32)

    def shared_terms(self, query: Mapping[str, float], i: int, limit: int = 3) -> list[str]:
        """The query's terms found in paper `i`, strongest (rarest) first."""
        found = [t for t in query if t in self.doc_terms[i]]
        found.sort(key=lambda t: -self.idf[t] * query[t])
        return found[:limit]
