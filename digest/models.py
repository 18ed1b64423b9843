"""Database tables (SQLModel). The schema every stage reads and writes.

`Paper.seq` is a monotonically increasing number given when a paper is first stored;
a subscriber's watermark (`Subscriber.last_paper_seq`) says which papers they have
already been considered for, which is what makes "never a paper twice, none skipped"
cheap to guarantee. Updates (arXiv `replace`, Hugging Face re-featuring) keep the seq.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    UniqueConstraint,
)
from sqlalchemy.orm import relationship
from sqlmodel import Field, Relationship, SQLModel

from digest.states import DigestStatus, Frequency, SubscriberStatus


def utcnow() -> datetime:
    """Aware UTC now; SQLModel stores aware datetimes and reads them back in UTC."""
    return datetime.now(UTC)


class Paper(SQLModel, table=True):
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=200)
    title: str
    abstract: str = ""
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    primary_category: str | None = None
    published: date | None = Field(default=None, index=True)
    url: str | None = None
    pdf_url: str | None = None
    code_url: str | None = None
    project_url: str | None = None
    hf_url: str | None = None
    upvotes: int | None = None
    github_stars: int | None = None
    num_comments: int | None = None
    thumbnail: str | None = None
    ai_summary: str | None = None
    ai_keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    first_seen: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class Subscriber(SQLModel, table=True):
    # Never reuse a deleted subscriber's id: signed links (view in browser) name ids.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True, max_length=320)
    status: str = Field(default=SubscriberStatus.ACTIVE, index=True)  # a SubscriberStatus
    keywords: str  # "" for a profile of an interest / example papers only
    # A plain-English interest ("reward models for aligning LLMs; not jailbreaks").
    interest: str | None = None
    # arXiv ids of example papers the subscriber likes (`--like`); kept even when the
    # paper is not stored yet, and used once it arrives.
    likes: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    max_papers: int = 20
    min_score: float | None = None
    timezone: str = "UTC"
    send_at: str = "07:00"
    frequency: str = Frequency.DAILY  # a Frequency
    weekday: str | None = None  # a Weekday, for weekly
    notify_empty: bool = False
    bounces: int = 0
    complaints: int = 0  # ARF abuse reports about our mail to this subscriber
    last_paper_seq: int | None = None
    last_digest_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    token_version: int = 0


class Digest(SQLModel, table=True):
    """One row per subscriber per edition: the outbox and the never-twice guard.

    The rendered message lives in its own table (`DigestMessage`): the outbox rewrites
    this row twice per send (claim, result), and with ~4 kB of message bytes inside it
    SQLite would copy those bytes (overflow pages) into the WAL on every write.
    `message` still reads and sets it like a column (`Digest(message=...)` too).
    """

    __table_args__ = (UniqueConstraint("subscriber_id", "edition", name="uq_digest_edition"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    edition: str = Field(index=True, max_length=32)  # subscriber-local date, YYYY-MM-DD
    status: str = Field(default=DigestStatus.PENDING, index=True)  # a DigestStatus
    recipient: str = ""
    paper_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    explanations: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    paper_seq_from: int = 0
    paper_seq_to: int = 0
    message_id: str | None = None
    subject: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, index=True)
    lease_until: datetime | None = None
    lease_owner: str | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    smtp_reply: str | None = None
    # Set by `digest retry`: the retry age (DIGEST_RETRY_MAX_AGE_HOURS) counts from here
    # instead of from created_at, so a pushed-again digest gets a full retry schedule.
    retry_from: datetime | None = None
    # Loaded with the row (joined), so a row read in a closed session still has it.
    body: DigestMessage | None = Relationship(
        sa_relationship=relationship(
            "DigestMessage", uselist=False, lazy="joined", cascade="all, delete-orphan"
        )
    )

    def __init__(self, **data: Any) -> None:
        message = data.pop("message", None)
        super().__init__(**data)
        if message is not None:
            self.message = message

    @property
    def message(self) -> bytes | None:
        return self.body.message if self.body is not None else None

    @message.setter
    def message(self, value: bytes | None) -> None:
        self.body = None if value is None else DigestMessage(message=value)


class DigestMessage(SQLModel, table=True):
    """The rendered MIME bytes of one digest, apart from its busy outbox row."""

    digest_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("digest.id", ondelete="CASCADE"), primary_key=True),
    )
    message: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SourceState(SQLModel, table=True):
    """How far each source has read, and how its last fetch went."""

    name: str = Field(primary_key=True, max_length=500)
    cursor: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    last_fetch_at: datetime | None = None
    last_status: str | None = None  # a FetchStatus
    last_error: str | None = None
    last_counts: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )


class RateEvent(SQLModel, table=True):
    """One counted action (a sign-up from an IP, a mail to an address) for the web
    app's rate limits. `bucket` never holds an address in clear, only its keyed hash."""

    id: int | None = Field(default=None, primary_key=True)
    bucket: str = Field(index=True, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class PaperEmbedding(SQLModel, table=True):
    """A paper's vector from one embedding model, computed once when it is fetched.
    `model` names the model and its version: vectors of another model are never mixed."""

    paper_id: str = Field(primary_key=True, max_length=200)
    model: str = Field(primary_key=True, max_length=200)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ProfileEmbedding(SQLModel, table=True):
    """The vector of a subscriber's interest, computed when the profile is saved.
    `topic_sha256` is the hash of the text it was computed from, so a vector that no
    longer matches the interest is known stale and recomputed, never used."""

    subscriber_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("subscriber.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    model: str = Field(primary_key=True, max_length=200)
    topic_sha256: str = Field(max_length=64)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class InboundEvent(SQLModel, table=True):
    """One message `digest inbound` read, and what it did (an `InboundKind`): the audit
    trail for operators and the counts for metrics. `subscriber_id` is the row a
    signed token named (None when nobody was), not a foreign key: the trail outlives
    nothing, `delete` removes a subscriber's events with the subscriber."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=32)
    subscriber_id: int | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    detail: str = Field(default="", max_length=500)


class InboundTally(SQLModel, table=True):
    """Inbound events `digest prune` deleted, counted by kind: the /metrics counter
    `digest_inbound_messages` is this plus the events still stored, so pruning the
    audit trail (DIGEST_KEEP_EVENTS_DAYS) never makes a counter go backwards."""

    kind: str = Field(primary_key=True, max_length=32)
    count: int = Field(sa_column=Column(BigInteger, nullable=False))


class DigestTally(SQLModel, table=True):
    """Outbox rows deleted with their subscriber, counted by the status they had: the
    /metrics counter `digest_digests_sent` is the `sent` count here plus the sent
    rows still stored, so deleting a subscriber never makes it go backwards."""

    status: str = Field(primary_key=True, max_length=32)
    count: int = Field(sa_column=Column(BigInteger, nullable=False))


class Rating(SQLModel, table=True):
    """A subscriber's "more like this" (+1) or "less like this" (-1) on one paper,
    from the links on every card. One row per (subscriber, paper): a second click on
    the same link changes nothing, the other link changes the vote, and undo deletes
    the row. It goes with its subscriber (ON DELETE CASCADE)."""

    __table_args__ = (UniqueConstraint("subscriber_id", "paper_id", name="uq_rating_paper"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    paper_id: str = Field(max_length=200)
    vote: int  # +1 more like this, -1 less like this (see states.Vote)
    created_at: datetime = Field(default_factory=utcnow)
