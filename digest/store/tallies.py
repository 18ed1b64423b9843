"""Running totals of deleted rows, so that the /metrics counters counted from rows
never go backwards (Prometheus counters must be monotonic).

A counter is the rows still stored plus a tally of those deleted, added in the
transaction that deletes them, from the rows the DELETE returned: exactly once,
whatever runs at the same time. `inboundtally` holds inbound events by kind
(pruned, or deleted with their subscriber), `digesttally` outbox rows by status
(deleted with their subscriber).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from digest.models import DigestTally, InboundTally
from digest.store.engine import table_of, upsert_insert

INBOUND_TALLY = table_of(InboundTally)
DIGEST_TALLY = table_of(DigestTally)


def add_to_tally(conn: Connection, table: Table, counts: Counter[str]) -> int:
    """Add `counts` (key -> rows deleted) to `table`'s running totals, in the
    deleting transaction `conn`; how many rows that was."""
    if counts:
        key = table.primary_key.columns.values()[0]
        insert = upsert_insert(table, conn.dialect.name)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[key], set_={"count": table.c.count + insert.excluded["count"]}
            ),
            [{key.name: k, "count": n} for k, n in sorted(counts.items())],
        )
    return sum(counts.values())


def tally_deleted_events(conn: Connection, kinds: Counter[str]) -> int:
    """Add deleted inbound events (pruned, or a deleted subscriber's) to the running
    totals, in the deleting transaction; how many there were."""
    return add_to_tally(conn, INBOUND_TALLY, kinds)


def tally_deleted_digests(conn: Connection, statuses: Counter[str]) -> int:
    """Add deleted outbox rows (a deleted subscriber's) to the running totals by
    status, in the deleting transaction; how many there were."""
    return add_to_tally(conn, DIGEST_TALLY, statuses)
