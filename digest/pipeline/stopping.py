"""How a long-running entry point is told to stop: SIGTERM (systemd, docker) and
SIGINT (Ctrl-C) set one event that the work polls (claims end, the sends in flight
finish and are recorded, the rest stays queued), instead of Python's defaults, which
end the process mid-send (SIGTERM) or raise KeyboardInterrupt wherever it happens to
be (SIGINT). `digest run`, `digest worker`, `digest serve`'s scheduler and the web
server all stop this way; the handlers they replaced are put back on the way out.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from digest.logs import log_event

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
log = logging.getLogger("digest.signals")


class StopSignal:
    """What the handler saw: `event` is set at the first signal, `received` names it.
    A second one with `insist` set exits at once (130), the work in flight abandoned
    (its outcome then unknown, as after a crash): the operator means it."""

    def __init__(self, say: Callable[[signal.Signals], None], insist: bool) -> None:
        self.event = threading.Event()
        self.received: signal.Signals | None = None
        self.say = say
        self.insist = insist

    def handle(self, signum: int, _frame: Any) -> None:
        sig = signal.Signals(signum)
        if self.insist and self.event.is_set():
            # stdout may be a --json report that will never come: say why on stderr
            sys.stderr.write(
                f"{sig.name} again: stopped at once; the work in flight is abandoned "
                "(its outcome unknown, as after a crash) and the next run takes it over\n"
            )
            raise SystemExit(130)
        self.received = self.received or sig
        self.say(sig)
        self.event.set()


def log_signal(sig: signal.Signals) -> None:
    """The default note of a signal: one `signal` event in the log."""
    log_event(log, "signal", signal=sig.name)


@contextmanager
def stop_on_signals(
    say: Callable[[signal.Signals], None] = log_signal, insist: bool = False
) -> Iterator[StopSignal]:
    """SIGTERM and SIGINT set the returned `StopSignal.event` (after `say` notes the
    signal) for the duration of the block; `insist`: a second one exits 130."""
    stop = StopSignal(say, insist)
    previous = {s: signal.signal(s, stop.handle) for s in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
