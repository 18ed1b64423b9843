"""What the outbox holds: per-edition counts by status and the latest errors, as a
plain dict so that `digest status` (and whoever adds sections to it) can print it
as a table or as JSON."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from digest.models import Digest, Subscriber
from digest.states import ERROR_STATUSES, DigestStatus, SubscriberStatus
from digest.store.engine import table_of

STATUSES = tuple(DigestStatus)

_T = table_of(Digest)
_S = table_of(Subscriber)


def delivery_status(engine: Engine, editions: int = 14, errors: int = 10) -> dict[str, Any]:
    """The last `editions` editions (newest first) and the last `errors` errors."""
    with engine.connect() as conn:
        keys = list(
            conn.execute(
                select(_T.c.edition).distinct().order_by(_T.c.edition.desc()).limit(editions)
            ).scalars()
        )
        counts = conn.execute(
            select(_T.c.edition, _T.c.status, func.count())
            .where(_T.c.edition.in_(keys))
            .group_by(_T.c.edition, _T.c.status)
        ).all()
        recent = conn.execute(
            select(
                _T.c.edition,
                _T.c.recipient,
                _T.c.status,
                _T.c.attempts,
                _T.c.last_error,
                _T.c.next_attempt_at,
            )
            .where(_T.c.status.in_(ERROR_STATUSES))
            .where(_T.c.last_error.is_not(None))
            .order_by(_T.c.id.desc())
            .limit(errors)
        ).all()
        suspended = conn.execute(
            select(func.count()).select_from(_S).where(_S.c.status == SubscriberStatus.SUSPENDED)
        ).scalar_one()
    table: dict[str, dict[str, int]] = {k: dict.fromkeys(STATUSES, 0) for k in keys}
    for edition, status, n in counts:
        row = table[edition]
        row[status] = row.get(status, 0) + n
    return {
        "editions": [{"edition": k, **table[k], "total": sum(table[k].values())} for k in keys],
        "last_errors": [
            {
                "edition": e.edition,
                "recipient": e.recipient,
                "status": e.status,
                "attempts": e.attempts,
                "error": e.last_error,
                "next_attempt_at": e.next_attempt_at.isoformat() if e.next_attempt_at else None,
            }
            for e in recent
        ],
        "suspended_subscribers": suspended,
    }


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in each of our tables that exists: what an operator would lose by dropping
    them (`digest db downgrade` says it before it does anything)."""
    have = set(sa_inspect(engine).get_table_names())
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in have:
                out[table.name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
    return out
