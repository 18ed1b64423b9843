"""Building one chunk of an edition: match, render, commit.

A chunk is a list of claims (outbox rows in `building`, see `digest.store.claims`).
`EditionBuilder` holds what every chunk of one edition shares, made once per process
and per edition, never per chunk: the engine, the renderer, the ranking weights, and
the papers per watermark (`PaperSet`: their keyword index and, once a chunk has an
interest, their vectors and BM25 index; only the example papers a chunk's profiles
name are looked up per chunk). It runs in the `digest run`
process itself or in a worker process of the build pool (`digest.pipeline.pool`);
either way it commits its own chunk, so only counts travel back.

Every rendering call goes through `render_row`, the one place the renderer is used.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from digest import semantic, store
from digest.config import Settings
from digest.errors import InputError
from digest.logs import log_event
from digest.matching import (
    IndexedPapers,
    Match,
    Profile,
    SemanticPapers,
    Weights,
    explanations_json,
    rank,
)
from digest.models import Paper
from digest.rendering import EditionRenderer, Item
from digest.states import DigestStatus
from digest.store import Engine
from digest.store.claims import Built, Claim, SubscriberRow, finish, subscriber_rows

log = logging.getLogger(__name__)

PAPER_SETS_KEPT = 4  # paper sets (one per distinct watermark) a builder keeps
WARM_PAPERS = 3  # papers of the digest `warm_renderer` renders
REBUILDS = 8  # times a chunk builds a digest whose watermark keeps moving, at most


@dataclass
class BuildReport:
    built: int = 0
    empty: int = 0
    already: int = 0
    nothing_new: int = 0  # empty editions sent anyway, to subscribers with notify_empty
    failed: int = 0  # digests that could not be built (recorded as failed, not sent)
    errors: list[str] = field(default_factory=list)
    previews: list[tuple[str, bytes]] = field(default_factory=list)
    chunks: int = 0
    taken_over: int = 0  # claims of a dead or expired process this one built
    broken: str = ""  # why building stopped early (the build workers broke), if it did
    unbuilt: int = 0  # claims that left for the next run to build
    error: str = ""  # the database (or disk) error that stopped building, if one did

    def add(self, other: BuildReport) -> None:
        self.built += other.built
        self.empty += other.empty
        self.already += other.already
        self.nothing_new += other.nothing_new
        self.failed += other.failed
        self.errors.extend(other.errors[: max(0, 100 - len(self.errors))])
        self.previews.extend(other.previews)
        self.chunks += other.chunks
        self.taken_over += other.taken_over
        self.broken = self.broken or other.broken
        self.unbuilt += other.unbuilt
        self.error = self.error or other.error

    @property
    def done(self) -> int:
        """Digests this process wrote, whatever their status."""
        return self.built + self.empty + self.nothing_new + self.failed

    def count(self, status: str, has_papers: bool) -> None:
        """One digest written with `status`, holding papers or not."""
        if status == DigestStatus.FAILED:
            self.failed += 1
        elif status == DigestStatus.EMPTY:
            self.empty += 1
        elif has_papers:
            self.built += 1
        else:
            self.nothing_new += 1


@dataclass(frozen=True)
class EditionPlan:
    """What every chunk of one edition shares; small and picklable (sent to workers).

    `top` is the newest paper seq the edition covers; `first_seq` is where a
    subscriber with no digest yet starts; `owner` is the lease owner of the claims."""

    settings: Settings
    now: datetime
    top: int
    first_seq: int
    owner: str
    dry_run: bool = False


@dataclass
class PaperSet:
    """The papers after one watermark, as every chunk starting there ranks them:
    indexed once, with their vectors and BM25 index (`semantic`) made on the first
    chunk that has an interest and kept for the next ones."""

    papers: IndexedPapers
    by_id: dict[str, Paper]
    semantic: SemanticPapers | None = None

    def ready(self, engine: Engine, settings: Settings, profiles: Sequence[Profile]) -> Any:
        """The papers made ready for ranking `profiles` (see `semantic.paper_set`)."""
        interests = semantic.interests_in(profiles)
        if not interests:
            return self.papers
        if self.semantic is None:
            self.semantic = semantic.edition_papers(engine, settings, self.papers)
        return semantic.with_examples(engine, self.semantic, interests)


@dataclass
class RenderedRow:
    message_id: str
    subject: str
    message: bytes
    paper_ids: list[str]


def make_renderer(settings: Settings) -> EditionRenderer:
    """The per-edition renderer: made once per process and edition."""
    return EditionRenderer(settings)


def render_row(
    renderer: EditionRenderer,
    sub: SubscriberRow,
    matches: Sequence[Match],
    by_id: dict[str, Paper],
    edition: str,
) -> RenderedRow:
    """One subscriber's digest as MIME bytes: the only rendering call of an edition.
    Raises InputError for data a message cannot carry (that digest fails alone)."""
    day = date.fromisoformat(edition)
    items = [Item(by_id[m.paper_id], m) for m in matches if m.paper_id in by_id]
    rendered = renderer.render(
        sub.email,
        items,
        day,
        f"{sub.id}:{edition}",
        sub.keywords,
        token_version=sub.token_version,
    )
    if not items:  # notify_empty: a short "nothing new" note instead of silence
        rendered.subject = f"Nothing new for your profile - {day.strftime('%d %b').lstrip('0')}"
    msg = renderer.message(sub.email, rendered)
    return RenderedRow(
        str(msg["Message-ID"]), rendered.subject, msg.as_bytes(), [i.paper.id for i in items]
    )


class EditionBuilder:
    """Builds chunks of one edition (see the module docstring)."""

    def __init__(self, plan: EditionPlan, engine: Engine) -> None:
        self.plan = plan
        self.engine = engine
        self.settings = plan.settings
        self.weights = Weights.from_settings(plan.settings)
        self.renderer = make_renderer(plan.settings)
        self._papers: OrderedDict[int, PaperSet] = OrderedDict()

    def papers(self, start: int) -> PaperSet:
        """The papers after `start` up to the edition's top, indexed once and kept for
        the next chunks (most subscribers share one watermark)."""
        got = self._papers.get(start)
        if got is None:
            papers = store.papers_after(self.engine, start, self.plan.top)
            got = self._papers[start] = PaperSet(IndexedPapers(papers), {p.id: p for p in papers})
            while len(self._papers) > PAPER_SETS_KEPT:
                self._papers.popitem(last=False)
        else:
            self._papers.move_to_end(start)
        return got

    def warm_renderer(self) -> None:
        """Compile the templates before the first chunk (a worker pool's zygote does, so
        that every worker it forks starts with them): one digest of a few papers of the
        edition, rendered for no one and thrown away."""
        papers = self.papers(self.plan.first_seq).by_id
        matches = [Match(paper_id, 1.0, []) for paper_id in list(papers)[:WARM_PAPERS]]
        nobody = SubscriberRow(
            0,
            "warm-up@example.org",
            "",
            WARM_PAPERS,
            None,
            "UTC",
            "07:00",
            "daily",
            None,
            True,
            None,
        )
        with contextlib.suppress(InputError):
            render_row(self.renderer, nobody, matches, papers, self.plan.now.date().isoformat())

    def build_claims(self, claims: Sequence[Claim]) -> BuildReport:
        """Read the claimed subscribers (their watermark as it is now), build, commit."""
        rows = subscriber_rows(self.engine, [c.subscriber_id for c in claims])
        # A subscriber deleted since the claim took its claimed row with it.
        pairs = [
            (rows[c.subscriber_id], c.edition, c.digest_id)
            for c in claims
            if c.subscriber_id in rows
        ]
        return self.build(pairs)

    def build(self, pairs: Sequence[tuple[SubscriberRow, str, int]]) -> BuildReport:
        """Build (subscriber, edition, digest id) triples; commit unless a dry run.
        A digest whose subscriber's watermark moved meanwhile (their other claim,
        built at once elsewhere, took the papers) is built again from the new one."""
        report = BuildReport(chunks=1)
        for _ in range(REBUILDS):
            stale = self._build_once(pairs, report)
            if not stale:
                return report
            rows = subscriber_rows(self.engine, [sub.id for sub, _, i in pairs if i in stale])
            pairs = [(rows[sub.id], e, i) for sub, e, i in pairs if i in stale and sub.id in rows]
            log_event(log, "edition.rebuild", claims=len(pairs))
        return report  # still moving: left claimed, taken over when the lease ends

    def _build_once(
        self, pairs: Sequence[tuple[SubscriberRow, str, int]], report: BuildReport
    ) -> set[int]:
        """Build, commit and count what was written; returns the stale digest ids."""
        built: list[Built] = []
        groups: dict[int, list[tuple[SubscriberRow, str, int]]] = defaultdict(list)
        for triple in pairs:
            seq = triple[0].last_paper_seq
            groups[seq if seq is not None else self.plan.first_seq].append(triple)
        for start, group in groups.items():
            papers = self.papers(start)
            results = self._rank(group, papers, built, start)
            for sub, edition, digest_id in group:
                matches = results.get(sub.id)
                if matches is None:
                    continue  # its profile failed: already recorded as failed
                built.append(
                    self._one(sub, edition, digest_id, start, matches, papers.by_id, report)
                )
        if self.plan.dry_run:
            _counted(report, built)
            return set()
        done = finish(self.engine, built, self.plan.owner, self.plan.now)
        _counted(report, [b for b in built if b.digest_id in done.kept])
        return done.stale

    def _rank(
        self,
        group: Sequence[tuple[SubscriberRow, str, int]],
        papers: PaperSet,
        built: list[Built],
        start: int,
    ) -> dict[int, list[Match]]:
        """Every subscriber's matches; a profile that cannot be read or ranked fails
        that subscriber alone (recorded as failed, their papers kept for later)."""
        subs = [sub for sub, _, _ in group]
        # "more / less like this" from earlier digests, for the whole chunk at once
        rated = store.rated_examples(self.engine, [sub.id for sub in subs])
        profiles: dict[int, Profile] = {}
        try:
            # interests bring their stored vectors, ratings their examples (semantic.py)
            profiles = semantic.profiles_of(self.engine, self.settings, subs, rated)
        except Exception:
            for sub, edition, digest_id in group:
                try:
                    profiles.update(semantic.profiles_of(self.engine, self.settings, [sub], rated))
                except Exception as exc:
                    built.append(self._failed(sub, edition, digest_id, start, "profile", exc))
        ready = papers.ready(self.engine, self.settings, list(profiles.values()))
        try:
            return rank(profiles, ready, self.weights)
        except Exception:
            log.debug("ranking a chunk failed; ranking its profiles one by one", exc_info=True)
        results: dict[int, list[Match]] = {}
        by_sub = {sub.id: (sub, edition, digest_id) for sub, edition, digest_id in group}
        for key, profile in profiles.items():
            try:
                results.update(rank({key: profile}, ready, self.weights))
            except Exception as exc:
                sub, edition, digest_id = by_sub[key]
                built.append(self._failed(sub, edition, digest_id, start, "profile", exc))
        return results

    def _failed(
        self,
        sub: SubscriberRow,
        edition: str,
        digest_id: int,
        start: int,
        what: str,
        exc: Exception,
    ) -> Built:
        reason = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        log_event(
            log, "digest.failed", logging.WARNING, subscriber=sub.id, stage=what, error=reason[:300]
        )
        return Built(
            digest_id,
            sub.id,
            DigestStatus.FAILED,
            start,
            self.plan.top,
            [],
            "{}",
            last_error=f"{what}: {reason}"[:500],
            recipient=sub.email,
            watermark=sub.last_paper_seq,
        )

    def _one(
        self,
        sub: SubscriberRow,
        edition: str,
        digest_id: int,
        start: int,
        matches: list[Match],
        by_id: dict[str, Paper],
        report: BuildReport,
    ) -> Built:
        # One JSON text per digest, exactly what storing the dict wrote (see
        # `explanations_json`): the web page and `digest explain` read it back.
        explanations = explanations_json(matches)
        row = Built(
            digest_id,
            sub.id,
            DigestStatus.EMPTY,
            start,
            self.plan.top,
            [],
            explanations,
            recipient=sub.email,
            watermark=sub.last_paper_seq,
        )
        if not matches and not sub.notify_empty:
            return row
        try:
            rendered = render_row(self.renderer, sub, matches, by_id, edition)
        except InputError as exc:
            # One subscriber's bad data (an address a message cannot carry) fails that
            # digest alone, visibly, and keeps their papers for later.
            row.status, row.last_error = DigestStatus.FAILED, str(exc)[:500]
            return row
        row.status = DigestStatus.PENDING
        row.message_id, row.subject, row.message = (
            rendered.message_id,
            rendered.subject,
            rendered.message,
        )
        row.paper_ids = rendered.paper_ids
        if self.plan.dry_run:
            report.previews.append((sub.email, rendered.message))
        return row


def _counted(report: BuildReport, rows: Sequence[Built]) -> BuildReport:
    """The report of what was written (or, in a dry run, would have been)."""
    for b in rows:
        report.count(b.status, bool(b.paper_ids))
        if b.status == DigestStatus.FAILED:
            report.errors.append(f"{b.recipient}: {b.last_error}")
    return report
