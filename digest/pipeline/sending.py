"""Sending beside building: the sender runs in its own thread and event loop while
the edition is still being built, and sends each chunk once it is committed.

It reads only the outbox, so a digest is always written before it is sent; the
builder just tells it (`BuildFeed.more`) that there may be more to claim, and when
building is over (`finish`), after which it is an ordinary sending pass: retries
within the run's window, then it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable

from digest.config import Settings
from digest.delivery import Transport
from digest.delivery.dkim import DkimSigner, make_signer
from digest.delivery.sender import Claimed, Sender, SendReport
from digest.store import Engine

FEED_POLL = 1.0  # seconds a waiting sender looks again even without a signal
STOP_POLL = 0.2  # seconds between looks at the stop event during a breaker pause


class BuildFeed:
    """What the builder (one thread) tells the sender (another thread, its own loop)."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.finished = threading.Event()
        self.stop = stop or threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._event = loop, asyncio.Event()

    def more(self) -> None:
        """A chunk was committed: there may be digests to claim."""
        loop, event = self._loop, self._event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(event.set)

    def finish(self) -> None:
        self.finished.set()
        self.more()

    async def wait(self, timeout: float) -> None:
        if self._event is None:
            await asyncio.sleep(timeout)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()


class StreamingSender(Sender):
    """A sender that, while the edition is being built, waits for the next chunk
    instead of ending when nothing is due, and stops claiming on shutdown."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        transport: Transport,
        signer: DkimSigner | None,
        pool: int,
        feed: BuildFeed,
        say: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(engine, settings, transport, signer, pool, None, say)
        self.feed = feed
        self.last_look = False
        # The run's retry window counts from the end of building (as when sending
        # started only then); until then nothing is given up for lack of time.
        self.deadline = math.inf

    async def run(self) -> SendReport:
        self.feed.bind(asyncio.get_running_loop())
        return await super().run()

    async def _claim(self) -> list[Claimed]:
        if self.feed.stop.is_set():
            return []
        return await super()._claim()

    async def _next_row(self) -> Claimed | None:
        """None once told to stop: the sends in flight finish and are recorded, the
        rows claimed but not started go back to the outbox (`Sender._run`), so a
        shutdown waits for at most one send per connection, not for a claimed batch
        of up to CLAIM_BATCH through a slow relay (past systemd's stop timeout, whose
        SIGKILL would leave the sends in flight unrecorded)."""
        if self.feed.stop.is_set():
            return None
        return await super()._next_row()

    def _told_to_stop(self) -> bool:
        return self.feed.stop.is_set()

    async def _pause(self, seconds: float) -> bool:
        """The breaker's pause (60 s, then doubling, while an edition is being built)
        and the rate limit's wait (up to an hour's worth with DIGEST_RATE_PER_HOUR),
        ended early by a stop: a worker told to stop must not sleep them out."""
        end = time.monotonic() + seconds
        while not self.feed.stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, STOP_POLL))
        return False

    async def _wait_for_retry(self) -> bool:
        if self.feed.stop.is_set():
            return False
        if not self.feed.finished.is_set():
            await self.feed.wait(FEED_POLL)
            return True
        if not self.last_look:  # the last chunk may have landed since our last claim
            self.last_look = True
            self.deadline = time.monotonic() + self.settings.run_retry_window_seconds
            return True
        return await super()._wait_for_retry()


class SendingThread:
    """Runs a StreamingSender in its own thread; `join` returns its report (or raises
    what it raised)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        transport: Transport,
        feed: BuildFeed,
        say: Callable[[str], None] | None,
    ) -> None:
        width = getattr(transport, "pool_size", None) or settings.smtp_pool_size
        self.sender = StreamingSender(
            engine, settings, transport, make_signer(settings), width, feed, say
        )
        self.report: SendReport | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="digest-sender", daemon=True)
        self.done = threading.Event()

    def _main(self) -> None:
        try:
            self.report = asyncio.run(self.sender.run())
        except BaseException as exc:  # handed to the thread that joins
            self.error = exc
        finally:
            self.done.set()

    def start(self) -> None:
        self.thread.start()

    def join(self) -> SendReport:
        """The report, once sending is over. Ctrl-C while waiting (`digest run` in a
        terminal) stops the sender as a worker's SIGTERM does: the sends in flight
        finish and are recorded, the rest stays queued; a second one abandons them
        (then their outcome is unknown, as after a crash)."""
        try:
            self.done.wait()
        except KeyboardInterrupt:
            self.sender.feed.stop.set()
            self.sender.say("interrupted: recording the sends in flight (Ctrl-C again to abandon)")
            # An Event, not Thread.join: a join interrupted once may return at once
            # the next time, the thread still running.
            self.done.wait()
            raise
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report
