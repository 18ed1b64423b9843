"""What one inbound message is, and whom it names: the decision, without the database.

A subscriber is named only by a valid signed token (`digest.tokens`): in the envelope
recipient (`--recipient`, `X-Original-To`, `Delivered-To`, `To`), in the Subject (an
unsubscribe only), or, for a bounce or complaint report, in the returned message's
`Return-Path` / `List-Unsubscribe` and the report's `Original-Mail-From`. Never from
`From`, never from an address a bounce detector finds in the text: anyone can write a
DSN naming anyone, and three forged ones would suspend a stranger.

flufl.bounce (GNU Mailman's detectors) says whether a bounce is permanent or
temporary; it is called inside a `try` because some of its detectors raise on hostile
input (IndexError, AttributeError).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from email.message import Message

from flufl.bounce import all_failures

from digest.inbound.reading import fields, for_log, header_values, parts, text_of
from digest.states import InboundKind
from digest.tokens import find_mail_token

log = logging.getLogger("digest.inbound")
# flufl.bounce logs a detector's exception with its traceback before re-raising it;
# `_bounce` reports it in one line. Without a handler of its own, Python's last-resort
# handler printed those tracebacks to stderr, into the operator's (JSON) log.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())
logging.getLogger("flufl.bounce").propagate = False

RECIPIENT_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "To")
# ARF feedback types that mean "this recipient does not want this mail" (RFC 5965 §7.3);
# not-spam (RFC 6430), auth-failure (RFC 6591) and other are only logged.
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus"})
# A permanent failure in a human-readable bounce that names no address: an enhanced
# status 5.x.x (RFC 3463) or a 5yz SMTP reply ("550 mailbox unavailable").
_PERMANENT = re.compile(r"(?<![\d.])5\.\d{1,3}\.\d{1,3}(?![\d.])|(?<![\d.])5[0-5]\d[ -]")
# Such a code counts only in a notice from a mail system: an out-of-office reply (sent
# to the Return-Path, RFC 3834) has "512 GPUs" or "call 503-555-0100" in it as well.
_MAIL_SYSTEM_FROM = re.compile(
    r"\b(mailer[-_]?daemon|mail[-_]?daemon|postmaster)@|mail delivery", re.I
)
_FAILURE_SUBJECT = re.compile(
    r"undeliver|non-?deliver|returned mail|delivery (status|fail|problem|notification)"
    r"|failure notice|could not be delivered|mail delivery",
    re.I,
)


@dataclass
class Verdict:
    """What to do with a message: its kind, the subscriber a token named (if any),
    and why, in words an operator reads in the log."""

    kind: InboundKind
    subscriber_id: int | None = None
    reason: str = ""
    detected: list[str] = field(default_factory=list)  # addresses a detector found


def _recipients(msg: Message, envelope: str | None) -> str:
    found = [envelope] if envelope else []
    for name in RECIPIENT_HEADERS:
        found += header_values(msg, name)
    return " ".join(found)


def _content_type(msg: Message) -> tuple[str, str]:
    """(type/subtype, report-type) in lower case, "" when unreadable."""
    try:
        ctype = msg.get_content_type()
        report = str(msg.get_param("report-type", "") or "").lower()
    except (ValueError, TypeError, LookupError, AttributeError):
        return "", ""
    return ctype, report


def _returned_headers(msg: Message) -> list[tuple[str, str]]:
    """The header fields of the returned message(s) a report carries (its
    message/rfc822 or text/rfc822-headers part), one level down only."""
    out: list[tuple[str, str]] = []
    for part in parts(msg):
        if part is msg:
            continue
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "text/rfc822-headers"):
            out += fields(part)
    return out


def _token_in(secret: str, purpose: str, values: list[str]) -> set[int]:
    ids = (find_mail_token(secret, purpose, v) for v in values)
    return {i for i in ids if i is not None}


def classify(msg: Message, secret: str, envelope_recipient: str | None = None) -> Verdict:
    """Decide what `msg` is; never raises for anything a message can contain."""
    ctype, report = _content_type(msg)
    if ctype == "multipart/report" and report == "feedback-report":
        return _complaint(msg, secret, envelope_recipient)
    recipients = _recipients(msg, envelope_recipient)
    unsubscriber = find_mail_token(secret, "unsubscribe-mail", recipients)
    if unsubscriber is None:
        for subject in header_values(msg, "Subject"):
            unsubscriber = find_mail_token(secret, "unsubscribe-mail", subject)
            if unsubscriber is not None:
                break
    if unsubscriber is not None:
        return Verdict(InboundKind.UNSUBSCRIBE, unsubscriber, "unsubscribe request by mail")
    bouncer = find_mail_token(secret, "bounce", recipients)
    if bouncer is None:
        returned = [v for name, v in _returned_headers(msg) if name == "return-path"]
        found = _token_in(secret, "bounce", returned)
        bouncer = found.pop() if len(found) == 1 else None
    if bouncer is None:
        why = "no valid token"
        if "unsubscribe" in recipients.lower():
            why = "an unsubscribe request without a valid token (a digest from before tokens?)"
        return Verdict(InboundKind.IGNORED, None, why)
    return _bounce(msg, bouncer)


def _bounce(msg: Message, subscriber_id: int) -> Verdict:
    """A message to a subscriber's bounce address: permanent, temporary, or neither
    (an auto-reply, a success notice)."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception as exc:  # flufl.bounce's detectors raise on some hostile input
        log.info("bounce detector failed (%s); falling back to status codes", type(exc).__name__)
        temporary, permanent = frozenset(), frozenset()
    detected = sorted(for_log(a.decode("ascii", "replace"), 100) for a in permanent | temporary)
    if temporary:
        return Verdict(InboundKind.TRANSIENT, subscriber_id, "temporary failure", detected[:5])
    if permanent:
        return Verdict(InboundKind.BOUNCE, subscriber_id, "permanent failure", detected[:5])
    statuses = [v for part in parts(msg) for n, v in _status_fields(part) if n == "status"]
    if any(s.strip().startswith("5") for s in statuses):
        return Verdict(InboundKind.BOUNCE, subscriber_id, "permanent failure (DSN status)")
    if any(s.strip().startswith("4") for s in statuses):
        return Verdict(InboundKind.TRANSIENT, subscriber_id, "temporary failure (DSN status)")
    if not _from_a_mail_system(msg):
        return Verdict(InboundKind.IGNORED, subscriber_id, "no delivery failure in it")
    for part in parts(msg):
        if part.get_content_type() in ("text/plain", "text/html") and _PERMANENT.search(
            text_of(part)
        ):
            return Verdict(InboundKind.BOUNCE, subscriber_id, "permanent failure (SMTP code)")
    return Verdict(InboundKind.IGNORED, subscriber_id, "no delivery failure in it")


def _from_a_mail_system(msg: Message) -> bool:
    """A failure notice by its sender (MAILER-DAEMON, postmaster, "Mail Delivery
    System") or its Subject ("Undelivered Mail", "Returned mail", ...), not a person's
    auto-reply."""
    senders = header_values(msg, "From")
    subjects = header_values(msg, "Subject")
    return any(_MAIL_SYSTEM_FROM.search(v) for v in senders) or any(
        _FAILURE_SUBJECT.search(v) for v in subjects
    )


def _status_fields(part: Message) -> list[tuple[str, str]]:
    return fields(part) if part.get_content_type() == "message/delivery-status" else []


def _complaint(msg: Message, secret: str, envelope_recipient: str | None) -> Verdict:
    """An ARF report (RFC 5965): a complaint when its type says so and every token in
    it names the same subscriber."""
    report = [p for p in parts(msg) if p.get_content_type() == "message/feedback-report"]
    report_fields = [kv for p in report for kv in fields(p)]
    types = {v.strip().lower() for n, v in report_fields if n == "feedback-type"}
    returned = _returned_headers(msg)
    named = _token_in(secret, "bounce", [_recipients(msg, envelope_recipient)])
    named |= _token_in(secret, "bounce", [v for n, v in report_fields if n == "original-mail-from"])
    named |= _token_in(secret, "bounce", [v for n, v in returned if n == "return-path"])
    named |= _token_in(
        secret, "unsubscribe-mail", [v for n, v in returned if n == "list-unsubscribe"]
    )
    kind_text = for_log(", ".join(sorted(types)) or "none", 60)
    if not types & COMPLAINT_TYPES:
        subscriber = next(iter(named)) if len(named) == 1 else None
        return Verdict(InboundKind.IGNORED, subscriber, f"feedback report of type {kind_text}")
    if len(named) > 1:
        return Verdict(
            InboundKind.IGNORED, None, "complaint whose tokens name different subscribers"
        )
    if not named:
        return Verdict(InboundKind.IGNORED, None, "complaint naming no subscriber by a valid token")
    return Verdict(InboundKind.COMPLAINT, named.pop(), f"complaint ({kind_text})")
