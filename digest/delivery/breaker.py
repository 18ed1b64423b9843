"""Circuit breaker: DIGEST_BREAKER_THRESHOLD failed sends in a row pause the run.

A broken relay fails every message; without a breaker one run would spend an attempt
(and, over a few runs, the whole retry schedule) of every subscriber on it. While
open, nothing is sent; after the pause one message probes the relay: success closes
the breaker, failure opens it again for twice as long.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(
        self, threshold: int, pause: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.base_pause = max(pause, 0.01)
        self.pause = self.base_pause
        self.clock = clock
        self.failures = 0
        self.open_until: float | None = None
        self.probing = False
        self.trips = 0

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def record(self, ok: bool) -> None:
        if ok:
            self.failures = 0
            self.open_until = None
            self.pause = self.base_pause
            self.probing = False
            return
        self.failures += 1
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
