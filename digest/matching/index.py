"""The fast path: index the day's papers once, then evaluate each compiled profile
with a few bitwise operations.

Each (field, word) and each (field, adjacent word pair) maps to a Python int used as
a bitset over the papers (bit i = paper i). A term's bitset is the OR of its
alternatives' bitsets (a two-word phrase is one pair lookup; longer phrases AND their
pairs and are checked word by word on the few candidates), computed once per edition
for each distinct term however many profiles use it. A profile's tree is then AND /
OR / AND-NOT of those ints: NOT is "all papers minus", so pure-NOT profiles are exact.
Only the papers a profile matched are scored, and hits are built when read.

Cost per edition: analysing the papers once, one bitset per distinct term, a handful
of big-int operations per profile, and scoring proportional to what matched -- not
papers x profiles x terms. `bench/match.py` measures it against `naive.py`.
"""

from __future__ import annotations

import gc
import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from digest.matching.documents import analyse_paper
from digest.matching.model import Hit, Limits, Match, Weights
from digest.matching.nodes import FIELDS, Form, Profile, Term, form_in
from digest.matching.ranking import (
    SCALE,
    base_scores,
    field_weight,
    min_units,
    rarity,
    score_of,
    select_top,
)

# Profiles matching fewer papers than this are ranked in plain Python; the rest in
# numpy blocks of BLOCK rows (both measured with bench/match.py).
NUMPY_FROM = 16
BLOCK = 64
_EMPTY = np.zeros(0)
_EMPTY_I = np.zeros(0, dtype=np.int64)


def iter_bits(bits: int) -> Iterator[int]:
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


def _bitset(indices: Iterable[int]) -> int:
    bits = 0
    for i in indices:
        bits |= 1 << i
    return bits


class TermStats:
    """What the index knows about one distinct term in this edition."""

    __slots__ = ("field_bits", "any", "contrib", "idx", "vals", "size")

    def __init__(self, field_bits: dict[str, int]) -> None:
        self.field_bits = field_bits
        self.any = 0
        for bits in field_bits.values():
            self.any |= bits
        self.contrib: dict[int, int] | None = None  # paper -> units
        self.idx: np.ndarray = _EMPTY_I  # the same, as arrays
        self.vals: np.ndarray = _EMPTY
        self.size = 0


class PaperIndex:
    """One edition's papers, indexed by field and word."""

    def __init__(self, papers: Sequence[Any], weights: Weights) -> None:
        self.weights = weights
        self.n = len(papers)
        self.nbytes = (self.n + 7) // 8
        self.ids = [str(p.id) for p in papers]
        self.all_bits = (1 << self.n) - 1
        self.docs = [analyse_paper(p) for p in papers]
        self.base = base_scores(papers, weights)
        self.base_np = np.array(self.base, dtype=np.float64)  # exact: integers < 2**53
        order = sorted(range(self.n), key=lambda i: (self.ids[i], i))
        self.id_rank = np.empty(self.n, dtype=np.int64)
        self.id_rank[order] = np.arange(self.n)
        self.stems: dict[str, dict[str, int]] = {}
        self.pairs: dict[str, dict[str, int]] = {}
        self.raws: dict[str, dict[str, int]] = {}
        self.vocab: dict[str, list[str]] = {}
        for field in FIELDS:
            self._index_field(field)
        self._terms: dict[str, TermStats] = {}
        self.known: dict[str, int] = {}  # term key -> bitset, read by nodes.Leaf
        self._prefixes: dict[tuple[str, str], int] = {}

    def _index_field(self, field: str) -> None:
        stems: dict[str, list[int]] = defaultdict(list)
        pairs: dict[str, list[int]] = defaultdict(list)
        raws: dict[str, list[int]] = defaultdict(list)
        for i, doc in enumerate(self.docs):
            s, r = doc[field]
            for w in set(s):
                if w is not None:
                    stems[w].append(i)
            for w in set(r):
                if w is not None:
                    raws[w].append(i)
            if field != "category":
                for a, b in set(zip(s, s[1:], strict=False)):
                    if a is not None and b is not None:
                        pairs[a + " " + b].append(i)
        self.stems[field] = {w: _bitset(ix) for w, ix in stems.items()}
        self.pairs[field] = {w: _bitset(ix) for w, ix in pairs.items()}
        self.raws[field] = {w: _bitset(ix) for w, ix in raws.items()}
        self.vocab[field] = sorted(raws)

    def mask(self, bits: int) -> np.ndarray:
        """A bitset as a 0/1 array over the papers."""
        return np.unpackbits(
            np.frombuffer(bits.to_bytes(self.nbytes, "little"), dtype=np.uint8),
            count=self.n,
            bitorder="little",
        )

    # ------------------------------------------------------------ terms

    def term_bits(self, term: Term) -> int:
        stats = self._terms.get(term.key)
        if stats is None:
            stats = self._terms[term.key] = TermStats(
                {f: self._form_bits(term.forms, f) for f in term.fields}
            )
            self.known[term.key] = stats.any
        return stats.any

    def stats(self, term: Term) -> TermStats:
        """The term's bitsets, and (once) its score contribution for each paper."""
        stats = self._terms.get(term.key)
        if stats is not None and stats.contrib is not None:
            return stats
        self.term_bits(term)
        stats = self._terms[term.key]
        if stats.contrib is None:
            idf = rarity(stats.any.bit_count(), self.n) if stats.any else 0.0
            idx = np.flatnonzero(self.mask(stats.any))
            w = np.zeros(len(idx))
            for f in term.fields:  # ranking.contribution, vectorised: same operations
                w += field_weight(self.weights, f) * self.mask(stats.field_bits[f])[idx]
            vals = np.floor(idf * w * SCALE + 0.5)
            stats.idx, stats.vals, stats.size = idx, vals, len(idx)
            stats.contrib = dict(zip(idx.tolist(), vals.astype(np.int64).tolist(), strict=True))
        return stats

    def _form_bits(self, forms: tuple[Form, ...], field: str) -> int:
        out = 0
        for form in forms:
            out |= self._one_form_bits(form, field)
        return out

    def _one_form_bits(self, form: Form, field: str) -> int:
        exact = not any(prefix for _, prefix in form)
        cand = self.all_bits
        if exact and len(form) > 1 and field != "category":
            pairs = self.pairs[field]
            for (a, _), (b, _) in zip(form, form[1:], strict=False):
                cand &= pairs.get(a + " " + b, 0)
                if not cand:
                    return 0
            if len(form) == 2:
                return cand  # an adjacent pair is exactly a two-word phrase
        else:
            for text, prefix in form:
                cand &= self._prefix_bits(field, text) if prefix else self.stems[field].get(text, 0)
                if not cand:
                    return 0
            if len(form) == 1:
                return cand
        return _bitset(i for i in iter_bits(cand) if form_in(form, self.docs[i][field]))

    def _prefix_bits(self, field: str, prefix: str) -> int:
        key = (field, prefix)
        bits = self._prefixes.get(key)
        if bits is None:
            vocab, raws = self.vocab[field], self.raws[field]
            bits = 0
            at = bisect_left(vocab, prefix)
            while at < len(vocab) and vocab[at].startswith(prefix):
                bits |= raws[vocab[at]]
                at += 1
            self._prefixes[key] = bits
        return bits

    # ------------------------------------------------------------ profiles

    def rank(
        self, bits: int, stats: Sequence[TermStats], limits: Limits
    ) -> list[tuple[int, float]]:
        """One profile's matched papers, scored, ordered and cut to its limits (plain
        Python: the fastest way for the few papers a specific profile matches)."""
        scored = []
        base = self.base
        for i in iter_bits(bits):
            s = base[i]
            for st in stats:
                c = st.contrib.get(i)  # type: ignore[union-attr]
                if c is not None:
                    s += c
            scored.append((score_of(s), i))
        return select_top(scored, self.ids, limits)

    def rank_many(
        self, jobs: Sequence[tuple[int, Sequence[TermStats], Limits]]
    ) -> list[list[tuple[int, float]]]:
        """Rank many profiles with numpy, a block of rows at a time (one row of scores
        per profile), then a partial sort per row on a key that orders by score and
        breaks ties by paper id. Scores are integer units, so summing the terms in
        any order gives exactly what `rank` and the naive evaluator give."""
        out: list[list[tuple[int, float]]] = []
        for lo in range(0, len(jobs), BLOCK):
            out.extend(self._rank_block(jobs[lo : lo + BLOCK]))
        return out

    def _rank_block(
        self, jobs: Sequence[tuple[int, Sequence[TermStats], Limits]]
    ) -> list[list[tuple[int, float]]]:
        b, n = len(jobs), self.n
        raw = b"".join(bits.to_bytes(self.nbytes, "little") for bits, _, _ in jobs)
        masks = np.unpackbits(
            np.frombuffer(raw, dtype=np.uint8).reshape(b, self.nbytes),
            axis=1,
            count=n,
            bitorder="little",
        ).view(bool)
        refs = [st for _, stats, _ in jobs for st in stats]
        if refs:
            per_row = [sum(st.size for st in stats) for _, stats, _ in jobs]
            flat = np.concatenate([st.idx for st in refs])
            flat += np.repeat(np.arange(0, b * n, n), per_row)
            vals = np.concatenate([st.vals for st in refs])
            total = np.bincount(flat, weights=vals, minlength=b * n).astype(np.float64, copy=False)
            total = total.reshape(b, n) + self.base_np  # (no weights: bincount gives ints)
        else:
            total = np.tile(self.base_np, (b, 1))
        pad = 1 << max(n - 1, 1).bit_length()
        if total.max(initial=0.0) * pad >= 2.0**53:  # the sort key would lose precision
            return [self.rank(bits, stats, lim) for bits, stats, lim in jobs]
        floors = np.array([min_units(lim.min_score) for *_, lim in jobs], dtype=np.float64)
        keys = total * pad + (pad - 1 - self.id_rank)
        keys[~(masks & (total >= floors[:, None]))] = -np.inf
        caps = np.array([max(lim.max_papers, 0) for *_, lim in jobs])
        width = int(min(max(caps.max(initial=0), 1), n))
        part = np.argpartition(keys, n - width, axis=1)[:, n - width :]
        part_keys = np.take_along_axis(keys, part, 1)
        order = np.argsort(-part_keys, axis=1)
        top = np.take_along_axis(part, order, 1)
        counts = np.minimum((np.take_along_axis(part_keys, order, 1) > -np.inf).sum(1), caps)
        top_scores = np.take_along_axis(total, top, 1) / SCALE
        return [
            list(zip(top[r, :c].tolist(), top_scores[r, :c].tolist(), strict=True))
            for r, c in enumerate(counts.tolist())
        ]

    def hits(self, terms: Sequence[Term], i: int) -> list[Hit]:
        return _hits(self._terms, terms, i)

    def scoped(self, profile: Profile, bits: int) -> tuple[list[TermStats], ScopedHits]:
        """The stats of a scoped profile's terms cut to the matched papers where each
        term is live (its clause satisfied), and the explainer that reads them: a term
        found in a paper through a failed AND clause neither scores nor explains it."""
        live: dict[str, int] = {}
        profile.root.live_bits(self, bits, live)
        cut: dict[str, TermStats] = {}
        for t in profile.terms:
            st = self.stats(t)
            keep = live.get(t.key, 0)
            cut[t.key] = st if not st.any & bits & ~keep else self._restrict(st, keep)
        return [cut[t.key] for t in profile.terms], ScopedHits(cut)

    def _restrict(self, st: TermStats, keep: int) -> TermStats:
        """`st` on the papers of `keep` only (same contributions, fewer papers)."""
        out = TermStats({f: b & keep for f, b in st.field_bits.items()})
        on = self.mask(keep)[st.idx].astype(bool)
        out.idx, out.vals = st.idx[on], st.vals[on]
        out.size = len(out.idx)
        out.contrib = {i: c for i, c in st.contrib.items() if keep >> i & 1}  # type: ignore[union-attr]
        return out


class IndexedPapers(Sequence[Any]):
    """A paper set ranked again and again (the web's live preview): pass it to `rank`
    in place of the list, and the keyword index is built once per weights and reused
    by every later call, instead of once per call. `rank` answers exactly as for the
    plain list. `builds` counts the indexes built, so callers and tests can see reuse.
    Made from another `IndexedPapers`, it shares that one's indexes (the same papers).

    Thread-safe: the build happens under a lock; an index's lazy per-term caches are
    only ever filled with the same values, so concurrent readers agree.
    """

    def __init__(self, papers: Sequence[Any]) -> None:
        same = papers if isinstance(papers, IndexedPapers) else None  # share its indexes
        self._papers: tuple[Any, ...] = same._papers if same is not None else tuple(papers)
        self._indexes: dict[Weights, PaperIndex] = same._indexes if same is not None else {}
        self._lock: threading.Lock = same._lock if same is not None else threading.Lock()

    @property
    def builds(self) -> int:
        """Keyword indexes built over these papers (one per weights, never dropped)."""
        return len(self._indexes)

    def __len__(self) -> int:
        return len(self._papers)

    def __getitem__(self, i: Any) -> Any:
        return self._papers[i]

    def index_for(self, weights: Weights) -> PaperIndex:
        with self._lock:
            index = self._indexes.get(weights)
            if index is None:
                with gc_paused():
                    index = self._indexes[weights] = PaperIndex(self._papers, weights)
            return index


def _hits(stats: Mapping[str, TermStats], terms: Sequence[Term], i: int) -> list[Hit]:
    out: list[Hit] = []
    for t in terms:
        st = stats[t.key]
        if st.contrib is not None and i not in st.contrib:
            continue  # most of a profile's terms are not in a given paper: one lookup
        field_bits = st.field_bits
        for f, hit in t.hit_of:  # a plain loop: a comprehension per term is a call
            if field_bits[f] >> i & 1:
                out.append(hit)
    return out


class ScopedHits:
    """Explains a scoped profile's matches from its terms' cut stats (see `scoped`)."""

    __slots__ = ("stats",)

    def __init__(self, stats: dict[str, TermStats]) -> None:
        self.stats = stats

    def hits(self, terms: Sequence[Term], i: int) -> list[Hit]:
        return _hits(self.stats, terms, i)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Building millions of small acyclic objects makes the cyclic GC rescan the heap
    again and again; nothing here creates cycles, so pause it for the edition."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def match_all(
    profiles: Mapping[Any, Profile],
    papers: Sequence[Any],
    limits: Mapping[Any, Limits] | None = None,
    weights: Weights | None = None,
) -> dict[Any, list[Match]]:
    """Every profile's ranked, capped matches among `papers` (one index per call)."""
    if not papers:
        return {key: [] for key in profiles}
    with gc_paused():
        return _match_all(profiles, papers, limits or {}, weights or Weights())


def _match_all(
    profiles: Mapping[Any, Profile],
    papers: Sequence[Any],
    limits: Mapping[Any, Limits],
    weights: Weights,
) -> dict[Any, list[Match]]:
    if isinstance(papers, IndexedPapers):
        index = papers.index_for(weights)
    else:
        index = PaperIndex(papers, weights)
    default = Limits()
    done: dict[tuple[str, int, float | None], list[tuple[int, float]]] = {}
    batch: list[tuple[int, Sequence[TermStats], Limits]] = []
    batch_keys: list[tuple[str, int, float | None]] = []
    job_of: dict[Any, tuple[str, int, float | None]] = {}
    explainer: dict[tuple[str, int, float | None], Any] = {}
    stats_of = index.stats
    for profile_key, profile in profiles.items():
        lim = limits.get(profile_key, default)
        job = job_of[profile_key] = (profile.text, lim.max_papers, lim.min_score)
        if job in done:
            continue
        bits = profile.root.bits(index)
        if not bits:
            done[job] = []
            continue
        if profile.scoped:
            stats, explainer[job] = index.scoped(profile, bits)
        else:
            stats = [stats_of(t) for t in profile.terms]
        if bits.bit_count() < NUMPY_FROM:
            done[job] = index.rank(bits, stats, lim)
        else:
            done[job] = []
            batch.append((bits, stats, lim))
            batch_keys.append(job)
    done.update(zip(batch_keys, index.rank_many(batch), strict=True))
    ids = index.ids
    lazy = Match.lazy
    out: dict[Any, list[Match]] = {}
    for key, profile in profiles.items():
        terms, job = profile.terms, job_of[key]
        source = explainer.get(job, index)
        out[key] = [lazy(ids[i], s, source, terms, i) for i, s in done[job]]
    return out
