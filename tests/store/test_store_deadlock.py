"""Two transactions that lock the same rows in opposite orders: PostgreSQL aborts
one of them (deadlock detected). `contended_write` runs the aborted one again,
so N processes sharing an edition never fail an edition on it."""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from digest import store
from digest.store.engine import contended_write

pytestmark = pytest.mark.postgres


def _crossing(engine, retried: bool) -> list[str]:
    """Thread 1 locks row 1 then 2, thread 2 locks 2 then 1; both hold their first
    lock until the other has taken its own, so one of them must be aborted."""
    both_hold_one = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []
    retrying: set[int] = set()

    def lock(first: int, second: int) -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE t SET n = n + 1 WHERE id = :i"), {"i": first})
            if first not in retrying:  # a retry goes straight through
                retrying.add(first)
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_hold_one.wait()
            conn.execute(text("UPDATE t SET n = n + 1 WHERE id = :i"), {"i": second})

    def run(first: int, second: int) -> None:
        try:
            (contended_write(lock) if retried else lock)(first, second)
            outcomes.append("done")
        except DBAPIError as exc:
            outcomes.append(getattr(exc.orig, "sqlstate", "?"))
            both_hold_one.abort()

    threads = [threading.Thread(target=run, args=a) for a in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return sorted(outcomes)


def test_a_deadlock_aborts_one_transaction_and_the_retry_finishes_it(postgres_url):
    engine = store.make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL)"))
        conn.execute(text("INSERT INTO t VALUES (1, 0), (2, 0)"))
    try:
        assert _crossing(engine, retried=False) == ["40P01", "done"]  # the hazard is real
        assert _crossing(engine, retried=True) == ["done", "done"]
        with engine.connect() as conn:  # the first round wrote one transaction, the second two
            assert conn.execute(text("SELECT sum(n) FROM t")).scalar() == 2 * 1 + 2 * 2
    finally:
        engine.dispose()
