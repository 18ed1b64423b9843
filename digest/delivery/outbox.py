"""The outbox: digests are rows written before any is sent; senders claim due rows
with a lease, send them, and record what the server said.

A row whose lease expired (its sender died) is claimed again, so a crash can only
duplicate a message the server had accepted before we recorded it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.delivery.base import Transport
from digest.models import Digest, utcnow

DUE_STATUSES = ("pending", "retrying", "sending")
LEASE_SECONDS = 300


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(engine: Engine, batch: int, owner: str) -> list[Digest]:
    """Lease up to `batch` due rows to `owner`; returns them with their messages."""
    now = utcnow()
    with Session(engine) as session:
        ids = list(
            session.exec(
                select(Digest.id)
                .where(Digest.status.in_(DUE_STATUSES))
                .where(or_(Digest.next_attempt_at.is_(None), Digest.next_attempt_at <= now))
                .where(or_(Digest.lease_until.is_(None), Digest.lease_until < now))
                .order_by(Digest.id)
                .limit(batch)
            )
        )
        if not ids:
            return []
        session.exec(
            update(Digest)
            .where(Digest.id.in_(ids))
            .where(or_(Digest.lease_until.is_(None), Digest.lease_until < now))
            .values(
                lease_owner=owner,
                lease_until=now + timedelta(seconds=LEASE_SECONDS),
                status="sending",
            )
        )
        session.commit()
        return list(
            session.exec(
                select(Digest).where(Digest.id.in_(ids)).where(Digest.lease_owner == owner)
            )
        )


async def send_due(engine: Engine, settings: Settings, transport: Transport) -> SendReport:
    """Send every due row; results are written in batches, not one transaction each."""
    report = SendReport()
    owner = _owner()
    await transport.open()
    try:
        while True:
            rows = claim(engine, 100, owner)
            if not rows:
                break
            results = []
            for row in rows:
                res = await transport.send(settings.from_address, row.recipient, row.message or b"")
                results.append((row.id, res))
                if res.ok:
                    report.sent += 1
                else:
                    report.failed += 1
                    report.errors.append(f"{row.recipient}: {res.reply}")
            _record(engine, results)
    finally:
        await transport.close()
    return report


def _record(engine: Engine, results: list) -> None:
    now = utcnow()
    with Session(engine) as session:
        for digest_id, res in results:
            values: dict = {"lease_until": None, "lease_owner": None, "smtp_reply": res.reply[:500]}
            if res.ok:
                values.update(status="sent", sent_at=now)
            else:
                values.update(
                    status="bounced" if res.permanent else "failed", last_error=res.reply[:500]
                )
            session.exec(
                update(Digest)
                .where(Digest.id == digest_id)
                .values(attempts=Digest.attempts + 1, **values)
            )
        session.commit()
