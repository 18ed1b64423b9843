"""Subscribers: the address we store, and their rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import String, case, cast, delete, insert, or_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest.errors import InputError
from digest.models import Digest, InboundEvent, ProfileEmbedding, Subscriber
from digest.states import SubscriberStatus
from digest.store.engine import table_of, upsert_insert
from digest.store.tallies import tally_deleted_digests, tally_deleted_events

MAX_LOCAL_PART = 64  # octets, RFC 5321
MAX_ADDRESS = 254  # what fits a path of 256 octets with its angle brackets (RFC 5321)


def normalise_email(address: str) -> str:
    """Validate an address and return the form we store and send to: ASCII, with an
    internationalised domain in its IDNA (xn--) form, lower-cased.

    The local part keeps its case per RFC 5321, but we compare case-insensitively, as
    every real mailbox provider does. Non-ASCII local parts would need SMTPUTF8, which
    we do not speak, so they are refused here rather than failing at send time.
    """
    if not isinstance(address, str) or len(address) > 320 or any(c in address for c in "\r\n"):
        raise InputError(f"invalid email address {str(address)[:80]!r}")
    # Imported here: its tables cost ~15 ms, and listing or exporting reads no address.
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email address {address[:80]!r}: {exc}") from None
    stored = (info.ascii_email or info.normalized).lower()
    local = stored.rpartition("@")[0]
    # RFC 5321 4.5.3.1: a relay refuses longer ones, so every send would fail.
    if len(local) > MAX_LOCAL_PART:
        raise InputError(
            f"invalid email address {address[:80]!r}: the part before the @ has "
            f"{len(local)} characters, at most {MAX_LOCAL_PART} are allowed"
        )
    if len(stored) > MAX_ADDRESS:
        raise InputError(
            f"invalid email address {address[:80]!r}: it has {len(stored)} characters, "
            f"at most {MAX_ADDRESS} are allowed"
        )
    return stored


def get_subscriber(engine: Engine, email: str) -> Subscriber | None:
    with Session(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def subscriber_by_id(engine: Engine, subscriber_id: int) -> Subscriber | None:
    """The row with this id (signed links name rows by id; ids are never reused)."""
    with Session(engine) as session:
        return session.get(Subscriber, subscriber_id)


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


def add_subscribers(
    engine: Engine, subscribers: Iterable[Mapping[str, Any]], chunk: int = 5000
) -> int:
    """Insert many subscribers at once (an import, a benchmark's population): each a
    mapping of Subscriber fields (`email` and `keywords` at least, already checked;
    the model's defaults fill the rest). One executemany per `chunk` rows in one
    transaction, no model object per row, so 100,000 take seconds. All or nothing:
    an address already there is an InputError and nothing is written. Returns how
    many were inserted."""
    table = table_of(Subscriber)
    defaults = Subscriber(email="", keywords="").model_dump(exclude={"id"})
    rows = iter(subscribers)
    count = 0
    try:
        with engine.begin() as conn:
            while batch := list(islice(rows, chunk)):
                conn.execute(insert(table), [{**defaults, **s} for s in batch])
                count += len(batch)
    except IntegrityError as exc:
        raise InputError(f"not imported: an address is already subscribed ({exc.orig})") from None
    return count


REPLACEABLE = (SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED)
PROFILE_FIELDS = (
    "keywords",
    "interest",
    "likes",
    "max_papers",
    "timezone",
    "send_at",
    "frequency",
    "weekday",
)


def store_signup(engine: Engine, subscriber: Subscriber) -> Subscriber:
    """Store the pending sign-up `subscriber`; the row as stored.

    A new address gets a row. A row still pending, or unsubscribed, takes the new
    profile, becomes pending and gets a new `token_version` (older confirmation links
    die). Any other row (a confirmed subscription) is left as it was. One statement
    whatever the address (INSERT ... ON CONFLICT DO UPDATE), which writes one row in
    every case: atomic under concurrent sign-ups, and as long for a known address as
    for a new one, so the answer's timing does not tell which."""
    table = table_of(Subscriber)
    values = {c.name: getattr(subscriber, c.name) for c in table.columns if c.name != "id"}
    insert = upsert_insert(table, engine.dialect.name).values(**values)
    replace = table.c.status.in_(REPLACEABLE)

    def new_if_replaced(name: str, value: Any) -> Any:
        return case((replace, value), else_=table.c[name])

    changes = {name: new_if_replaced(name, insert.excluded[name]) for name in PROFILE_FIELDS}
    changes["status"] = new_if_replaced("status", SubscriberStatus.PENDING)
    changes["token_version"] = new_if_replaced("token_version", table.c.token_version + 1)
    # A sign-up never confirmed restarts its week before it is forgotten.
    changes["created_at"] = case(
        (replace & table.c.confirmed_at.is_(None), insert.excluded.created_at),
        else_=table.c.created_at,
    )
    stmt = insert.on_conflict_do_update(index_elements=[table.c.email], set_=changes)
    with Session(engine) as session:
        session.exec(stmt)
        session.commit()
    stored = get_subscriber(engine, subscriber.email)
    if stored is None:  # deleted by another request between the two statements
        raise InputError(f"no subscriber with address {subscriber.email}")
    return stored


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
    """Delete a subscriber, every outbox row made for them and the inbound mail that
    named them; False if unknown."""
    with Session(engine) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if sub is None:
            return False
        digests = delete(Digest).where(col(Digest.subscriber_id) == sub.id)
        statuses = session.connection().execute(digests.returning(col(Digest.status)))
        # the metrics' counter of digests sent keeps counting theirs
        tally_deleted_digests(session.connection(), Counter(statuses.scalars()))
        session.exec(delete(ProfileEmbedding).where(col(ProfileEmbedding.subscriber_id) == sub.id))
        events = delete(InboundEvent).where(col(InboundEvent.subscriber_id) == sub.id)
        kinds = session.connection().execute(events.returning(col(InboundEvent.kind)))
        # the metrics' counter of inbound mail keeps counting them
        tally_deleted_events(session.connection(), Counter(kinds.scalars()))
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


def probe_write(engine: Engine) -> None:
    """Write a throwaway subscriber row and roll it back (the health check): raises
    SQLAlchemyError when the database answers reads but a sign-up could not be
    stored (a read-only or broken file, a full disk SQLite notices at once, a
    read-only replica)."""
    with Session(engine) as session:
        probe = Subscriber(
            email="healthz-probe@invalid", keywords="healthz", status=SubscriberStatus.PENDING
        )
        session.add(probe)
        session.flush()
        session.rollback()


def any_interest(engine: Engine) -> bool:
    """Whether any subscriber has a plain-English interest or example papers."""
    stmt = (
        select(Subscriber.id)
        .where(
            or_(
                (col(Subscriber.interest).is_not(None)) & (col(Subscriber.interest) != ""),
                cast(col(Subscriber.likes), String) != "[]",
            )
        )
        .limit(1)
    )
    with Session(engine) as session:
        return session.exec(stmt).first() is not None
