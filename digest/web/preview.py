"""The live preview on the sign-up and manage pages: which of the last days' papers a
profile would have matched, so a person can tune it before subscribing.

It needs no login and runs on every keystroke, so it is guarded (`PreviewGate`):
- the recent papers are indexed once per paper set (`RecentPapers`, keyed by the
  papers table's version and the day) and every preview reuses that index,
- each client IP gets `DIGEST_PREVIEW_LIMIT_PER_IP` previews a minute (then 429),
- previews run on one worker thread, off the event loop that serves everything
  else; at most `DIGEST_PREVIEW_QUEUE` run or wait at once (then 503 at once), and
  one that takes longer than `DIGEST_PREVIEW_TIMEOUT` answers 503 (a query is capped
  at 200 terms by the language, so one preview over a built index is milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from digest import semantic, store, subscriptions
from digest.config import Settings
from digest.errors import DigestError, InputError, QueryError
from digest.matching import IndexedPapers, Weights, profile_from_input, query_warnings, rank
from digest.models import Paper
from digest.preview import preview_papers
from digest.store import Engine
from digest.web.limits import MemoryRateLimiter, network_of

PREVIEW_DAYS = 7
MAX_SHOWN = 50
PREVIEW_WINDOW = timedelta(minutes=1)
MODEL_LOAD_TIMEOUT = 60.0  # seconds the first interest preview waits for the model


def recent_papers(engine: Engine, today: date | None = None) -> list[Paper]:
    """Papers of the last week; the bundled sample when nothing is stored yet."""
    since = (today or date.today()) - timedelta(days=PREVIEW_DAYS)
    return store.list_papers(engine, since=since, limit=1000) or preview_papers(engine)


class RecentPapers:
    """The preview's paper set, indexed once and reused until the papers table
    changes (a fetch stored or updated papers) or the day turns. `builds` counts the
    paper sets loaded, and `papers.builds` the indexes built over the current one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._key: tuple[Any, ...] | None = None
        self._papers = IndexedPapers([])
        self._lock = threading.Lock()
        self.builds = 0

    def current(self, today: date | None = None) -> IndexedPapers:
        day = today or date.today()
        key = (day, *store.papers_version(self.engine))
        with self._lock:
            if key != self._key:
                self._papers = IndexedPapers(recent_papers(self.engine, day))
                self._key = key
                self.builds += 1
            return self._papers


def _safe_url(paper: Paper) -> str | None:
    for url in (paper.hf_url, paper.url):
        if url and url.startswith(("https://", "http://")):
            return url
    return None


def preview(
    engine: Engine,
    settings: Settings,
    profile: str,
    max_papers: int,
    papers: IndexedPapers | None = None,
    interest: str = "",
    likes: Sequence[str] = (),
) -> dict[str, Any]:
    """The matches as JSON-ready data; a bad profile raises InputError/QueryError.
    `papers` is a prepared paper set to reuse (the gate's); read afresh without it.
    With an interest or example papers, they rank as they would in the digest."""
    wants = subscriptions.check_interest(interest)
    examples = subscriptions.check_likes(list(likes))
    if not profile.strip() and not wants and not examples:
        raise InputError("the profile is empty: give keywords, topics, an interest or examples")
    wanted = profile_from_input(profile, interest=wants, liked=examples)
    if papers is None:
        papers = IndexedPapers(recent_papers(engine))
    # every paper it would select, so `matched` counts them all; the list shows a few
    wanted = wanted.with_limits(len(papers) or 1)
    # the papers' vectors as stored (fetches compute them): no waiting on the model here
    ready = (
        semantic.paper_set(engine, settings, papers, [wanted], embed_missing=False)
        if wants or examples
        else papers
    )
    matches = rank({0: wanted}, ready, Weights.from_settings(settings))[0]
    shown = matches[: min(max_papers, MAX_SHOWN)]
    by_id = {p.id: p for p in papers} if shown else {}
    return {
        "ok": True,
        "days": PREVIEW_DAYS,
        "considered": len(papers),
        "matched": len(matches),
        "warnings": query_warnings(profile) if profile.strip() else [],  # likely slips
        "papers": [
            {
                "id": m.paper_id,
                "title": by_id[m.paper_id].title,
                "url": _safe_url(by_id[m.paper_id]),
                "why": m.why(),
                "score": round(m.score, 3),
            }
            for m in shown
            if m.paper_id in by_id
        ],
    }


def error_json(exc: InputError) -> dict[str, Any]:
    position = exc.position if isinstance(exc, QueryError) else None
    message = exc.args[0] if exc.args else str(exc)
    return {"ok": False, "error": str(message), "position": position}


def _warm(settings: Settings) -> None:
    with contextlib.suppress(DigestError):  # DIGEST_SEMANTIC=on without the model
        semantic.embedder(settings)


class Refused(Exception):
    """A preview not run: 429 (this client's limit) or 503 (busy, or too slow)."""

    def __init__(self, status: int, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class PreviewGate:
    """Runs previews on a bounded worker, per-IP limited, within a time budget.

    Admission (`run`) happens on the event loop, so the count of previews in flight
    needs no lock; the worker reports completion back to the loop.
    """

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.papers = RecentPapers(engine)
        self.limiter = MemoryRateLimiter()
        self.in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-preview")
        self._model: Future[None] | None = None

    def model_loaded(self) -> Future[None] | None:
        """The embedding model's loading, started by the first preview that ranks an
        interest or example papers (None with DIGEST_SEMANTIC=off). Loading takes
        about 1.4 s, so it is not done when the app starts: most requests never need
        it (sign-ups, links, the API, keyword previews), and `digest web` is up at once."""
        if self._model is None and self.settings.semantic != "off":
            self._model = self._pool.submit(_warm, self.settings)
        return self._model

    def admit(self, client_ip: str) -> None:
        """Raise `Refused` unless this client may start a preview now."""
        bucket = "preview:" + network_of(client_ip)
        if not self.limiter.allow(bucket, self.settings.preview_limit_per_ip, PREVIEW_WINDOW):
            raise Refused(
                429,
                "too many previews from your address; try again in a moment",
                self.limiter.retry_after(bucket, PREVIEW_WINDOW),
            )
        if self.in_flight >= self.settings.preview_queue:
            raise Refused(503, "the preview is busy; try again in a moment", 1)

    async def run(
        self,
        client_ip: str,
        profile: str,
        max_papers: int,
        interest: str = "",
        likes: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The preview's data; `Refused` when limited, busy or over the time budget."""
        self.admit(client_ip)
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        loading = self.model_loaded() if interest.strip() or likes else None
        if loading is not None and not loading.done():
            # the first such preview waits for the model outside its time budget (a
            # failed load is the preview's to report: it ranks lexically, or says why)
            done, _ = await asyncio.wait({asyncio.wrap_future(loading)}, timeout=MODEL_LOAD_TIMEOUT)
            if not done:
                self.in_flight -= 1
                raise Refused(503, "the preview is starting up; try again in a moment", 2)
        job: Future[dict[str, Any]] = self._pool.submit(
            self._work, profile, max_papers, interest, tuple(likes)
        )
        job.add_done_callback(lambda _: self._report(loop))
        try:
            return await asyncio.wait_for(
                asyncio.wrap_future(job), timeout=self.settings.preview_timeout
            )
        except TimeoutError:
            # not started yet: cancelled with the wait; running: it ends on its own,
            # and stays counted in `in_flight` until it does
            raise Refused(503, "the preview took too long; try again in a moment", 2) from None

    def _work(
        self, profile: str, max_papers: int, interest: str, likes: tuple[str, ...]
    ) -> dict[str, Any]:
        return preview(
            self.engine,
            self.settings,
            profile,
            max_papers,
            papers=self.papers.current(),
            interest=interest,
            likes=likes,
        )

    def _report(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called where the job ended (the worker, or the loop when cancelled)."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the app has stopped
            loop.call_soon_threadsafe(self._finished)

    def _finished(self) -> None:
        self.in_flight -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
