"""Sending rate limits: at most DIGEST_RATE_PER_SECOND and DIGEST_RATE_PER_HOUR.

Two token buckets. The per-second one holds a single token, so sends are evenly
spaced rather than bursting; the per-hour one starts with what is left of the last
hour's allowance (counted from the outbox), so two runs in one hour share it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    def __init__(
        self, rate: float, capacity: float, tokens: float, clock: Callable[[], float]
    ) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = tokens
        self.clock = clock
        self.stamp = clock()

    def wait_time(self) -> float:
        """Seconds until one token is available (0 if one is there now)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


class SendRateLimiter:
    def __init__(
        self,
        per_second: float,
        per_hour: int,
        sent_last_hour: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.buckets: list[TokenBucket] = []
        if per_second > 0:
            self.buckets.append(TokenBucket(per_second, 1, 1, clock))
        if per_hour > 0:
            left = max(0, per_hour - sent_last_hour)
            self.buckets.append(TokenBucket(per_hour / 3600, per_hour, left, clock))

    async def acquire(
        self, deadline: float, sleep: Callable[[float], Awaitable[bool]] | None = None
    ) -> bool:
        """Wait for a send slot; False (nothing taken) if it would come after
        `deadline` (a `clock()` value), so the run can stop and leave the rest, or if
        `sleep` (the wait, True once it is over) is cut short by a stop: a worker told
        to stop must not sit out the per-hour limit first."""
        wait = max((b.wait_time() for b in self.buckets), default=0.0)
        if wait > 0 and self.clock() + wait > deadline:
            return False
        for bucket in self.buckets:
            bucket.take()
        if wait > 0 and not await (sleep or _sleep)(wait):
            self.give_back()
            return False
        return True

    def give_back(self) -> None:
        """A slot taken but not used (the send was called off): it counts for nothing."""
        for bucket in self.buckets:
            bucket.tokens += 1


async def _sleep(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True
