"""Inbound mail (`digest inbound`): mailed unsubscribes, bounces that come back after
the SMTP session (DSN, RFC 3464), and complaints (ARF, RFC 5965).

| module        | holds                                                          |
|---------------|----------------------------------------------------------------|
| `reading.py`  | the bounded read, a parse that cannot raise, safe part access  |
| `classify.py` | what a message is and which subscriber's token it carries      |

`handle` ties them to the store: one message, one transaction, one event row.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from digest import store
from digest.config import Settings
from digest.inbound.classify import Verdict, classify
from digest.inbound.reading import MAX_MESSAGE_BYTES, for_log, parse, read_capped
from digest.logs import log_event
from digest.states import InboundKind
from digest.store import Engine
from digest.store.inbound import NOT_COUNTED

__all__ = ["MAX_MESSAGE_BYTES", "InboundResult", "decide", "handle", "read_capped"]

log = logging.getLogger("digest.inbound")


@dataclass
class InboundResult:
    """What `digest inbound` did with one message (its `--json`)."""

    action: str  # an InboundKind
    reason: str
    subscriber: str | None = None  # the address whose row changed or was named
    status: str | None = None  # that row's status afterwards
    bounces: int | None = None
    complaints: int | None = None
    changed: bool = False
    bytes: int = 0
    truncated: bool = False
    detected: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def decide(data: bytes, secret: str, recipient: str | None = None) -> Verdict:
    """The verdict on raw message bytes; anything unreadable is IGNORED."""
    if not data.strip():
        return Verdict(InboundKind.IGNORED, None, "empty message")
    msg = parse(data)
    if msg is None:
        return Verdict(InboundKind.IGNORED, None, "unreadable message (nested too deep?)")
    try:
        return classify(msg, secret, recipient)
    except (RecursionError, ValueError, TypeError, LookupError, AttributeError, IndexError) as exc:
        # A shape nobody foresaw: logged and left alone, never a crash.
        return Verdict(InboundKind.IGNORED, None, f"unreadable message ({type(exc).__name__})")


def handle(
    engine: Engine,
    settings: Settings,
    data: bytes,
    total: int | None = None,
    recipient: str | None = None,
    sender: str | None = None,
) -> InboundResult:
    """Read one message (the first `len(data)` of `total` bytes), act on it, record
    it. Raises only the store's DatabaseError (the caller asks the MTA to retry)."""
    total = len(data) if total is None else total
    verdict = decide(data, settings.secret_key, recipient)
    detail = verdict.reason
    if verdict.detected:
        detail += f"; detected {', '.join(verdict.detected)}"
    if sender:
        detail += f"; envelope sender {for_log(sender, 100)}"
    change = store.apply_inbound(
        engine, verdict.kind, verdict.subscriber_id, detail, settings.max_bounces
    )
    if verdict.subscriber_id is not None and change.email is None:
        detail = f"{verdict.reason} (subscriber {verdict.subscriber_id} no longer exists)"
    elif not change.counted:
        detail += NOT_COUNTED
    changed = (
        change.email is not None
        and change.counted
        and verdict.kind
        in (
            InboundKind.BOUNCE,
            InboundKind.COMPLAINT,
            InboundKind.UNSUBSCRIBE,
        )
    )
    result = InboundResult(
        action=str(verdict.kind),
        reason=detail,
        subscriber=change.email,
        status=change.status_after,
        bounces=change.bounces,
        complaints=change.complaints,
        changed=changed,
        bytes=total,
        truncated=total > len(data),
        detected=verdict.detected,
    )
    log_event(
        log,
        "digest.inbound",
        action=str(verdict.kind),
        subscriber=change.email,
        reason=detail,
        bytes=total,
    )
    return result
