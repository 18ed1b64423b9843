"""Circuit breaker: DIGEST_BREAKER_THRESHOLD failed sends in a row pause the run.

A broken relay fails every message; without a breaker one run would spend an attempt
(and, over a few runs, the whole retry schedule) of every subscriber on it. While
open, nothing is sent; after the pause one message probes the relay: success closes
the breaker, failure opens it again for twice as long.

A relay that cannot even be reached (connection refused, no answer) opens it at the
first failure, with its own short pause (`relay_pause`, doubling): nothing about one
message can be learned from it, and `down_since` lets the run give up quickly.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(
        self,
        threshold: int,
        pause: float,
        clock: Callable[[], float] = time.monotonic,
        relay_pause: float | None = None,
    ) -> None:
        self.threshold = threshold
        self.base_pause = max(pause, 0.01)
        self.relay_pause = max(relay_pause or self.base_pause, 0.01)
        self.pause = self.base_pause
        self.down_since: float | None = None  # the relay unreachable since (clock)
        self.last_reply = ""
        self.clock = clock
        self.failures = 0
        self.open_until: float | None = None
        self.probing = False
        self.trips = 0

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def record(self, ok: bool, relay_down: bool = False, reply: str = "") -> None:
        if ok:
            self.failures = 0
            self.open_until = None
            self.pause = self.base_pause
            self.probing = False
            self.down_since = None
            return
        self.failures += 1
        self.last_reply = reply or self.last_reply
        if relay_down and self.down_since is None:
            self.down_since = self.clock()
            self.pause = self.relay_pause
            self.probing = False
            if self.open_until is None:
                self._open()
            return
        if self.probing:
            self.probing = False
            self.pause *= 2
            self._open()
        elif self.open_until is None and self.failures >= self.threshold:
            self._open()

    def _open(self) -> None:
        self.open_until = self.clock() + self.pause
        self.trips += 1

    def seconds_to_probe(self) -> float:
        assert self.open_until is not None
        return max(0.0, self.open_until - self.clock())

    def start_probe(self) -> None:
        """The pause is over: let exactly one message through to test the relay."""
        self.open_until = None
        self.probing = True
