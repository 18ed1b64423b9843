"""The named values digest stores and prints: statuses, frequencies, weekdays, SMTP
security. One home, so a new status is added in one place.

They are `StrEnum`s: a member *is* its string (`DigestStatus.SENT == "sent"`), so the
database columns stay plain strings (no schema change), and JSON, f-strings and
templates print the bare value.
"""

from __future__ import annotations

from enum import StrEnum


class DigestStatus(StrEnum):
    """Where one outbox row (a subscriber's digest of one edition) stands."""

    PENDING = "pending"  # built, waiting to be claimed
    SENDING = "sending"  # claimed under a lease
    SENT = "sent"
    RETRYING = "retrying"  # a temporary failure; due again later
    FAILED = "failed"  # gave up, or could not be built
    BOUNCED = "bounced"  # the server refused the address for good
    EMPTY = "empty"  # nothing matched: recorded, not sent
    # Claimed for building by one process (under a lease), not built yet; the sender
    # never takes it. See digest.store.claims.
    BUILDING = "building"


# Rows a sender may claim, and rows `digest status` lists as errors.
DUE_STATUSES = (DigestStatus.PENDING, DigestStatus.RETRYING)
ERROR_STATUSES = (DigestStatus.RETRYING, DigestStatus.FAILED, DigestStatus.BOUNCED)
# Rows whose outcome is settled: no sender, builder or retry schedule takes them again
# (only `digest retry` can push a failed one back), so their stored message may be
# pruned once old (`digest prune`). Pending, retrying, sending and building are not.
FINISHED_STATUSES = (
    DigestStatus.SENT,
    DigestStatus.BOUNCED,
    DigestStatus.FAILED,
    DigestStatus.EMPTY,
)


class SubscriberStatus(StrEnum):
    PENDING = "pending"  # signed up on the web, not confirmed yet
    ACTIVE = "active"
    PAUSED = "paused"  # by the subscriber
    SUSPENDED = "suspended"  # by us, after bounces
    UNSUBSCRIBED = "unsubscribed"


class InboundKind(StrEnum):
    """What `digest inbound` made of one message (an `InboundEvent` row)."""

    UNSUBSCRIBE = "unsubscribe"  # a mailto unsubscribe with a valid token
    BOUNCE = "bounce"  # a permanent delivery failure, counted on the subscriber
    TRANSIENT = "transient"  # a delay / temporary failure: noted, nothing counted
    COMPLAINT = "complaint"  # an ARF abuse report: unsubscribed, counted
    IGNORED = "ignored"  # anything else: no valid token, no failure, a feedback we skip


class FetchStatus(StrEnum):
    """How a source's last fetch went."""

    OK = "ok"
    ERROR = "error"


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    WEEKDAYS = "weekdays"  # Monday to Friday


class Weekday(StrEnum):
    """Three-letter days, in `date.weekday()` order (Monday is 0)."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


FREQUENCIES = tuple(Frequency)
WEEKDAYS = tuple(Weekday)


class SmtpSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    SSL = "ssl"


class Vote(StrEnum):
    """What a feedback link on a card asks for; stored as +1 / -1 (`Rating.vote`)."""

    MORE = "more"  # more like this
    LESS = "less"  # less like this

    @property
    def sign(self) -> int:
        return 1 if self is Vote.MORE else -1

    @classmethod
    def of_sign(cls, sign: int) -> Vote:
        return cls.MORE if sign > 0 else cls.LESS
