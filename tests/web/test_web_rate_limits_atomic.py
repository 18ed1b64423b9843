"""Issue 16 item 5: the rate limit's check and count are one atomic step: many
requests at once against a real database accept exactly the limit, never more."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from digest import store
from digest.web.limits import DbRateLimiter

LIMIT = 20
AT_ONCE = 48


def accepted_at_once(engine, bucket: str) -> int:
    """How many of AT_ONCE threads, released together, the limiter lets through."""
    limiter = DbRateLimiter(engine)
    start = threading.Barrier(AT_ONCE)

    def one() -> bool:
        start.wait(timeout=30)
        return limiter.allow(bucket, LIMIT, timedelta(hours=1))

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return sum(pool.map(lambda _: one(), range(AT_ONCE)))


def test_sqlite_file_accepts_exactly_the_limit(engine):
    for round_ in range(4):
        assert accepted_at_once(engine, f"ip:round-{round_}") == LIMIT


@pytest.mark.parametrize("rounds", [4])
def test_postgresql_accepts_exactly_the_limit(postgres_url, rounds):
    engine = store.make_engine(postgres_url)
    store.init_db(engine)
    try:
        for round_ in range(rounds):
            assert accepted_at_once(engine, f"ip:round-{round_}") == LIMIT
    finally:
        engine.dispose()
