"""Subscribers: the address we store, and their rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest.errors import InputError
from digest.models import Digest, Subscriber
from digest.states import SubscriberStatus


def normalise_email(address: str) -> str:
    """Validate an address and return the form we store and send to: ASCII, with an
    internationalised domain in its IDNA (xn--) form, lower-cased.

    The local part keeps its case per RFC 5321, but we compare case-insensitively, as
    every real mailbox provider does. Non-ASCII local parts would need SMTPUTF8, which
    we do not speak, so they are refused here rather than failing at send time.
    """
    if not isinstance(address, str) or len(address) > 320 or any(c in address for c in "\r\n"):
        raise InputError(f"invalid email address {str(address)[:80]!r}")
    try:
        info = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email address {address[:80]!r}: {exc}") from None
    return (info.ascii_email or info.normalized).lower()


def get_subscriber(engine: Engine, email: str) -> Subscriber | None:
    with Session(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def add_subscriber(engine: Engine, subscriber: Subscriber) -> Subscriber:
    """Insert; an existing address is an InputError and nothing is written."""
    with Session(engine) as session:
        session.add(subscriber)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise InputError(f"{subscriber.email} is already subscribed") from None
        session.refresh(subscriber)
        return subscriber


def update_subscriber(engine: Engine, email: str, **changes: Any) -> Subscriber:
    with Session(engine) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if sub is None:
            raise InputError(f"no subscriber with address {email}")
        for key, value in changes.items():
            setattr(sub, key, value)
        session.add(sub)
        session.commit()
        session.refresh(sub)
        return sub


def list_subscribers(engine: Engine, status: str | None = None) -> list[Subscriber]:
    with Session(engine) as session:
        stmt = select(Subscriber)
        if status:
            stmt = stmt.where(Subscriber.status == status)
        return list(session.exec(stmt.order_by(col(Subscriber.id))))


def delete_subscriber(engine: Engine, email: str) -> bool:
    """Delete a subscriber and every outbox row made for them; False if unknown."""
    with Session(engine) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if sub is None:
            return False
        session.exec(delete(Digest).where(col(Digest.subscriber_id) == sub.id))
        session.delete(sub)
        session.commit()
        return True


def purge_unconfirmed(engine: Engine, before: datetime) -> int:
    """Forget sign-ups never confirmed and started before `before`; how many went."""
    stmt = (
        delete(Subscriber)
        .where(col(Subscriber.status) == SubscriberStatus.PENDING)
        .where(col(Subscriber.confirmed_at).is_(None))
        .where(col(Subscriber.created_at) < before)
    )
    with Session(engine) as session:
        result = session.exec(stmt)
        session.commit()
        return result.rowcount or 0
