"""The BM25 index of one paper set, for plain-English interests (the terms, stemming
and weights it indexes are `lexical`'s).

An index holds each term's postings as arrays (paper index, weight): frequent terms
as dense rows scored with one matrix product per block of queries, the rest
scattered from their postings (`score_flat`).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from digest.matching.lexical import K1, B, paper_bigrams, paper_terms
from digest.matching.text import stem as plural

# A term in at least this share of the papers is scored with a dense matrix product
# (few such terms, used by most queries); rarer ones through their postings. The
# product costs every dense term for every query, the postings only what a query
# has: measured with bench/semantic.py, 1/16 (320 dense terms of 1,000 papers) cost
# 1.4 CPU-s per 100,000 queries, 0.15 (89 terms) 0.77 s, flat up to 0.2.
DENSE_SHARE = 0.15


class LexicalIndex:
    """BM25 postings of one paper set, laid out for scoring blocks of queries at once:
    frequent terms as dense rows (one BLAS product per block), rare ones as postings
    expanded with numpy and summed with one `bincount`."""

    def __init__(self, papers: Sequence[Any]) -> None:
        self.n = n = len(papers)
        self.doc_seqs = [paper_terms(p) for p in papers]
        docs = [Counter(seq) for seq in self.doc_seqs]
        pairs = [Counter(paper_bigrams(p)) for p in papers]
        lengths = np.array([len(seq) for seq in self.doc_seqs], dtype=np.float64)
        avg = float(lengths.mean()) if n and lengths.mean() > 0 else 1.0
        norm = K1 * (1 - B + B * lengths / avg)
        postings: dict[str, list[tuple[int, int]]] = {}
        for i, (doc, pair) in enumerate(zip(docs, pairs, strict=True)):
            for term, tf in doc.items():
                postings.setdefault(term, []).append((i, tf))
            for term, tf in pair.items():
                postings.setdefault(term, []).append((i, tf))
        self.unseen_idf = math.log(1 + (n + 0.5) / 0.5)  # a word in no paper
        self.ids: dict[str, int] = {}
        self.idf: dict[str, float] = {}
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        ptr, post_idx, post_val = [0], [], []
        for t, (term, plist) in enumerate(postings.items()):
            df = len(plist)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            idx = np.array([i for i, _ in plist], dtype=np.int64)
            freq = np.array([f for _, f in plist], dtype=np.float64)
            weight = (idf * freq * (K1 + 1) / (freq + norm[idx])).astype(np.float32)
            self.ids[term], self.idf[term], self.postings[term] = t, idf, (idx, weight)
            post_idx.append(idx)
            post_val.append(weight)
            ptr.append(ptr[-1] + df)
        self.ptr = np.array(ptr, dtype=np.int64)
        self.post_idx = np.concatenate(post_idx) if post_idx else np.zeros(0, np.int64)
        self.post_val = np.concatenate(post_val) if post_val else np.zeros(0, np.float32)
        self.idf_of = np.array(list(self.idf.values()), dtype=np.float32)
        # what a term adds to a query's coverage (COVERAGE in interests.py): its idf if
        # it is a word, nothing if a pair (a pair's words already count)
        self.cover_of = np.where([" " in t for t in self.idf], 0.0, self.idf_of).astype(np.float32)
        df_of = np.diff(self.ptr)
        dense = np.flatnonzero(df_of >= max(2, DENSE_SHARE * n))
        self.dense_pos = np.full(len(df_of), -1, dtype=np.int64)
        self.dense_pos[dense] = np.arange(len(dense))
        self.dense_w = np.zeros((len(dense), n), dtype=np.float32)  # BM25 weights
        for row, term_id in enumerate(dense.tolist()):
            lo, hi = int(self.ptr[term_id]), int(self.ptr[term_id + 1])
            self.dense_w[row, self.post_idx[lo:hi]] = self.post_val[lo:hi]
        self.dense_p = (self.dense_w > 0).astype(np.float32)  # presence
        # pairs ("a b") by their words' ids, sorted, for `pair_ids`
        pair_terms = [
            (self.ids[a], self.ids[b], t) for t in self.ids if " " in t for a, b in [t.split(" ")]
        ]
        keys = np.array([a * len(self.ids) + b for a, b, _ in pair_terms], dtype=np.int64)
        order = np.argsort(keys)
        self.pair_keys = keys[order]
        self.pair_tids = np.array([self.ids[t] for _, _, t in pair_terms], dtype=np.int64)[order]
        self.doc_terms = [frozenset(d) | frozenset(p) for d, p in zip(docs, pairs, strict=True)]
        self._vocab: list[str] | None = None

    def pair_ids(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The term ids of the pairs "first second" (word ids; -1 for a word no paper
        has), -1 where no paper has the pair."""
        if not len(self.pair_keys):
            return np.full(len(first), -1, dtype=np.int64)
        keys = first * len(self.ids) + second
        at = np.searchsorted(self.pair_keys, keys).clip(0, len(self.pair_keys) - 1)
        hit = (first >= 0) & (second >= 0) & (self.pair_keys[at] == keys)
        return np.where(hit, self.pair_tids[at], -1)

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

    def encode(self, query: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, weights) of a query of known terms (`weights_of`), for `score_block`."""
        ids = self.ids
        return (
            np.fromiter((ids[t] for t in query), dtype=np.int64, count=len(query)),
            np.fromiter(query.values(), dtype=np.float32, count=len(query)),
        )

    def score_block(
        self, queries: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(BM25, idf mass present) of many encoded queries: one row each."""
        lens = np.array([len(t) for t, _ in queries], dtype=np.int64)
        if not lens.sum():
            zero = np.zeros((len(queries), self.n), dtype=np.float32)
            return zero, zero.copy()
        rows = np.repeat(np.arange(len(queries)), lens)
        tids = np.concatenate([t for t, _ in queries])
        ws = np.concatenate([w for _, w in queries])
        return self.score_flat(len(queries), rows, tids, ws)

    def score_flat(
        self, b: int, rows: np.ndarray, tids: np.ndarray, ws: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(BM25, idf mass present) of `b` queries given as one (row, term id, weight)
        triple per query term (each term once per row): frequent terms through one
        BLAS product each, rare ones scattered from their postings with `np.add.at`."""
        n = self.n
        pos = self.dense_pos[tids]
        dense = pos >= 0
        f = len(self.dense_w)
        if f:
            cells = rows[dense] * f + pos[dense]
            q = np.zeros(b * f, dtype=np.float32)
            np.add.at(q, cells, ws[dense])
            bm25 = q.reshape(b, f) @ self.dense_w
            q[:] = 0
            np.add.at(q, cells, self.cover_of[tids[dense]])
            present = q.reshape(b, f) @ self.dense_p
        else:
            bm25 = np.zeros((b, n), dtype=np.float32)
            present = np.zeros((b, n), dtype=np.float32)
        sparse = ~dense
        t, r, w = tids[sparse], rows[sparse], ws[sparse]
        starts, counts = self.ptr[t], self.ptr[t + 1] - self.ptr[t]
        total = int(counts.sum())
        if total:
            at = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
            flat = np.repeat(r * n, counts) + self.post_idx[at]
            np.add.at(bm25.reshape(-1), flat, self.post_val[at] * np.repeat(w, counts))
            np.add.at(present.reshape(-1), flat, np.repeat(self.cover_of[t], counts))
        return bm25, present

    def phrase_mask(self, words: Sequence[str]) -> np.ndarray:
        """Papers whose title or abstract has `words` in this order, each word in any
        form that starts with its singular (`jailbreaks` finds "jailbreak",
        "jailbreaking"): what an exclusion names should go, however it is written."""
        mask = np.zeros(self.n, dtype=bool)
        forms: list[set[str]] = []
        cand: set[int] | None = None
        for w in words:
            found = self._forms(plural(w))
            if not found:
                return mask
            forms.append(found)
            papers: set[int] = set()
            for f in found:
                papers.update(self.postings[f][0].tolist())
            cand = papers if cand is None else cand & papers
        k = len(forms)
        for i in cand or ():
            seq = self.doc_seqs[i]
            if k == 1 or any(
                all(seq[j + m] in forms[m] for m in range(k)) for j in range(len(seq) - k + 1)
            ):
                mask[i] = True
        return mask

    def _forms(self, prefix: str) -> set[str]:
        """The papers' words that start with `prefix` (sorted vocabulary, bisected)."""
        if self._vocab is None:
            self._vocab = sorted(self.postings)
        vocab = self._vocab
        out = set()
        at = bisect_left(vocab, prefix)
        while at < len(vocab) and vocab[at].startswith(prefix):
            out.add(vocab[at])
            at += 1
        return out

    def shared_terms(self, query: Mapping[str, float], i: int, limit: int = 3) -> list[str]:
        """The query's terms found in paper `i`, strongest (what they added to its
        BM25: rarest, most weighted) first. A shared pair of words stands for its two
        words ("reward models", not "reward" and "models"), as strong as the stronger."""
        found = [t for t in query if t in self.doc_terms[i]]
        strength = {t: self.idf[t] * query[t] for t in found}
        for pair in [t for t in found if " " in t]:
            for w in pair.split(" "):
                if w in strength and " " not in w:
                    strength[pair] = max(strength[pair], strength.pop(w))
        return sorted(strength, key=lambda t: -strength[t])[:limit]
