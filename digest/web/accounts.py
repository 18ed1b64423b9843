"""What a visitor can do to a subscription, shared by the HTML pages and the JSON API:
sign up, confirm, change, pause, resume, unsubscribe, delete, and read a sent digest.

Every action that needs an identity takes a signed link token (no passwords). Sign-up
answers the same whether the address is new or known: a known address is sent its
manage link instead of a second confirmation, and nothing about it changes. The
sign-up is stored before the answer (the same one-row write for every address); only
the mail is sent after it. Links name the subscriber's row, so they die with it.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from digest import store, subscriptions
from digest.config import Settings
from digest.errors import InputError, QueryError
from digest.models import Digest, Subscriber, utcnow
from digest.rendering import make_environment, render_digest
from digest.rendering.compose import items_from_outbox
from digest.states import SubscriberStatus
from digest.store import Engine
from digest.tokens import TokenError, read_token_issued
from digest.web.limits import SignupLimits
from digest.web.mails import Mail, confirmation_mail, manage_mail
from digest.web.topics import Topic, compose_profile, split_profile

# A known address gets its manage link; these statuses count as "known".
KNOWN_STATUSES = (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED, SubscriberStatus.SUSPENDED)
# A sign-up never confirmed is forgotten after this long (its link lives two days).
UNCONFIRMED_KEPT = timedelta(days=7)


MAX_ID = 2**31 - 1  # the largest id column value (INTEGER: 32 bits on PostgreSQL)


class LinkError(InputError):
    """A link that is forged, expired, replayed or no longer points at anything."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason  # invalid | expired | used | gone | missing


class TooManyRequests(InputError):
    pass


class MailBudgetSpent(InputError):
    """The mailbox had its mails for today. Said to the visitor (not swallowed): the
    owner must learn that a message is already waiting. It tells no more than that
    someone asked for this mailbox lately, the same for known and new addresses."""


@dataclass
class ProfileInput:
    """The fields of the sign-up and manage forms, as typed (strings, unvalidated)."""

    keywords: str | None = ""
    topics: list[str] | None = field(default_factory=list)
    timezone: str | None = None
    send_at: str | None = None
    frequency: str | None = None
    weekday: str | None = None
    max_papers: int | str | None = None
    # A plain-English interest and example papers (arXiv ids); None: not given.
    interest: str | None = None
    likes: str | list[str] | None = None

    def wants(self) -> bool:
        """Whether an interest or example papers are given (keywords may be empty)."""
        likes = self.likes if isinstance(self.likes, str) else " ".join(self.likes or [])
        return bool((self.interest or "").strip() or likes.strip())

    def profile(self, catalogue: list[Topic], optional: bool = False) -> str:
        """The keyword profile as stored; "" allowed with an interest or examples."""
        text = compose_profile(self.keywords or "", self.topics or [], catalogue)
        if not text and not (optional or self.wants()):
            raise InputError(
                "the profile is empty: give keywords, topics, an interest or example papers"
            )
        return text

    def max_papers_number(self) -> int | None:
        value = self.max_papers
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            if isinstance(value, str) and not value.strip().isascii():
                raise ValueError  # int() reads other scripts' digits: "٣" is 3
            return int(value)
        except (TypeError, ValueError):
            raise InputError(
                f"--max-papers: expected a whole number from 1 to 500, got {str(value)[:20]!r}"
            ) from None


@dataclass
class Accounts:
    settings: Settings
    engine: Engine
    limits: SignupLimits
    catalogue: list[Topic]

    # ------------------------------------------------------------ links

    def _read(self, purpose: str, token: str) -> Any:
        return self._read_issued(purpose, token)[0]

    def _read_issued(self, purpose: str, token: str) -> tuple[Any, datetime]:
        if not isinstance(token, str) or not 10 <= len(token) <= 2000:
            raise LinkError("this link is not valid")
        try:
            return read_token_issued(self.settings.secret_key, purpose, token)
        except TokenError as exc:
            reason = "expired" if "expired" in str(exc) else "invalid"
            raise LinkError(str(exc), reason) from None

    def _subscriber_for(self, purpose: str, token: str) -> Subscriber:
        """The subscription a manage or unsubscribe link was made for, and only that
        one: a later sign-up of the same address is another row (ids are never
        reused), and the link dies with the row it named."""
        payload, issued = self._read_issued(purpose, token)
        address, sub_id = link_target(payload)
        sub = store.get_subscriber(self.engine, address)
        if sub is None or not made_for(sub, sub_id, issued):
            raise LinkError("there is no subscription for this link any more", "gone")
        return sub

    def manage_subscriber(self, token: str) -> Subscriber:
        return self._subscriber_for("manage", token)

    def confirm_target(self, token: str) -> Subscriber:
        """The pending subscriber a confirm link is for, checked but not changed."""
        payload, issued = self._read_issued("confirm", token)
        if not (
            isinstance(payload, list)
            and len(payload) in (2, 3)
            and isinstance(payload[0], str)
            and all(isinstance(p, int) and not isinstance(p, bool) for p in payload[1:])
        ):
            raise LinkError("this link is not valid")
        sub_id = payload[1] if len(payload) == 3 else None
        sub = store.get_subscriber(self.engine, payload[0])
        if sub is None or not made_for(sub, sub_id, issued):
            raise LinkError("there is no sign-up for this link any more", "gone")
        if sub.token_version != payload[-1]:
            raise LinkError("this confirmation link has been replaced by a newer one", "used")
        if sub.status in KNOWN_STATUSES:
            raise LinkError("this subscription is already confirmed", "used")
        if sub.status != SubscriberStatus.PENDING:
            raise LinkError("this confirmation link is no longer valid", "used")
        return sub

    # ------------------------------------------------------------ sign-up

    def signup(self, address_typed: str, data: ProfileInput, client_ip: str) -> Mail:
        """Validate, apply the limits, store; the mail to send."""
        return self.register(self.check_signup(address_typed, data, client_ip))

    def check_signup(self, address_typed: str, data: ProfileInput, client_ip: str) -> Subscriber:
        """Validation and the limits, none of which depends on whether the address is
        known: the same SQL runs for every address. MailBudgetSpent when the mailbox
        had its mails for today."""
        sub = subscriptions.new_subscriber(
            self.settings,
            address_typed,
            data.profile(self.catalogue),
            interest=data.interest or None,
            likes=data.likes or None,
            status=SubscriberStatus.PENDING,
            max_papers=data.max_papers_number(),
            timezone=data.timezone,
            send_at=data.send_at,
            frequency=data.frequency,
            weekday=data.weekday,
        )
        if not self.limits.allow_signup(client_ip):
            raise TooManyRequests("too many sign-ups from your network; please try again later")
        if not self.limits.allow_mail(sub.email):
            raise MailBudgetSpent(
                "a message was sent to this address recently; look for it in your inbox "
                "and spam folder (its link works for two days), or try again tomorrow"
            )
        return sub

    def register(self, sub: Subscriber) -> Mail:
        """Store the sign-up `sub` (validated by `check_signup`) before the visitor is
        answered, so an accepted sign-up is never lost; the mail to send, which the
        routes send after answering: a confirmation, or a known address's manage link.

        Every address costs the same statements here (`store.store_signup` writes one
        row whether or not the address is known). A later sign-up for a pending
        address replaces its profile and voids the earlier confirmation link, never
        silently: the earlier link says it was replaced, and the confirm page shows
        the profile being confirmed and that it replaced an earlier one."""
        store.purge_unconfirmed(self.engine, utcnow() - UNCONFIRMED_KEPT)
        stored = store.store_signup(self.engine, sub)
        if stored.status in KNOWN_STATUSES:
            return manage_mail(self.settings, stored.email, stored.id)
        return confirmation_mail(self.settings, stored.email, stored.id, stored.token_version)

    def confirm(self, token: str) -> Subscriber:
        sub = self.confirm_target(token)
        return store.update_subscriber(
            self.engine,
            sub.email,
            status=SubscriberStatus.ACTIVE,
            confirmed_at=utcnow(),
            unsubscribed_at=None,
            last_paper_seq=None,
        )

    # ------------------------------------------------------------ self-service

    def update(self, token: str, data: ProfileInput) -> Subscriber:
        """Change what is given; keywords or topics alone keep the other half."""
        sub = self.manage_subscriber(token)
        profile = None
        if data.keywords is not None or data.topics is not None:
            keywords, topics = split_profile(sub.keywords, self.catalogue)
            merged = ProfileInput(
                keywords=data.keywords if data.keywords is not None else keywords,
                topics=data.topics if data.topics is not None else topics,
            )
            # empty keywords are fine when the profile keeps or gets an interest or
            # examples; `subscriptions.change` checks the profile as a whole
            profile = merged.profile(self.catalogue, optional=True)
        return subscriptions.change(
            self.engine,
            self.settings,
            sub.email,
            keywords=profile,
            interest=data.interest,
            likes=data.likes,
            timezone=data.timezone or None,
            send_at=data.send_at or None,
            frequency=data.frequency or None,
            weekday=data.weekday or None,
            max_papers=data.max_papers_number(),
        )

    def set_status(self, token: str, status: str) -> Subscriber:
        sub = self.manage_subscriber(token)
        changes: dict[str, Any] = {"status": status}
        if status == SubscriberStatus.ACTIVE:
            changes.update(bounces=0, unsubscribed_at=None)
            if sub.confirmed_at is None:
                changes["confirmed_at"] = utcnow()
        return store.update_subscriber(self.engine, sub.email, **changes)

    def resend(self, token: str) -> Mail | None:
        sub = self.manage_subscriber(token)
        if not self.limits.allow_mail(sub.email):
            return None
        return manage_mail(self.settings, sub.email, sub.id)

    def delete_account(self, token: str) -> None:
        sub = self.manage_subscriber(token)
        store.delete_subscriber(self.engine, sub.email)
        self.limits.forget_address(sub.email)

    def unsubscribe_target(self, token: str) -> str:
        return link_target(self._read("unsubscribe", token))[0]

    def unsubscribe(self, token: str) -> str:
        """Takes effect at once; an address no longer stored is unsubscribed already,
        and a link made for a deleted subscription leaves a later one alone."""
        payload, issued = self._read_issued("unsubscribe", token)
        address, sub_id = link_target(payload)
        sub = store.get_subscriber(self.engine, address)
        if (
            sub is not None
            and made_for(sub, sub_id, issued)
            and sub.status != SubscriberStatus.UNSUBSCRIBED
        ):
            store.update_subscriber(
                self.engine, address, status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=utcnow()
            )
        return address

    # ------------------------------------------------------------ view in browser

    def digest_html(self, token: str) -> str:
        key = self._read("view", token)
        sub_id, _, edition = key.partition(":") if isinstance(key, str) else ("", "", "")
        if not sub_id.isdigit() or not edition:
            raise LinkError("this link is not valid")
        if int(sub_id) > MAX_ID:  # signed by us, yet no row can have it: nothing here
            raise LinkError("there is no such digest", "missing")
        row = store.digest_for(self.engine, int(sub_id), edition)
        if row is None:
            raise LinkError("this digest is no longer stored", "gone")
        # Re-rendered from its papers first: that works after `digest prune` deleted
        # the stored email too. The email is the fallback when a paper is gone.
        full = self._full_digest_html(row, key)
        if full is not None:
            return full
        if not row.message:
            raise LinkError("this digest is no longer stored", "gone")
        msg = email.message_from_bytes(row.message, policy=email.policy.default)
        part = msg.get_body(preferencelist=("html",))
        if part is None:
            raise LinkError("this digest has no web version", "gone")
        return part.get_content()

    def _full_digest_html(self, row: Digest, key: str) -> str | None:
        """The digest with every paper it holds: the email may have been cut at 100 kB
        behind an "N more papers" link that leads here. None when a paper is gone."""
        papers = store.papers_by_ids(self.engine, row.paper_ids)
        if not row.paper_ids or len(papers) != len(set(row.paper_ids)):
            return None
        sub = store.get_subscriber(self.engine, row.recipient)
        items = items_from_outbox(papers, row.paper_ids, row.explanations)
        rendered = render_digest(
            make_environment(self.settings),
            self.settings,
            row.recipient,
            items,
            date.fromisoformat(row.edition),
            key,
            sub.keywords if sub else "",
            size_limit=None,
            token_version=sub.token_version if sub and sub.id == row.subscriber_id else None,
        )
        return rendered.html


def link_target(payload: Any) -> tuple[str, int | None]:
    """The address and row id a manage or unsubscribe token names; links made before
    ids were added carry the address alone."""
    if isinstance(payload, str):
        return payload, None
    if (
        isinstance(payload, list)
        and len(payload) == 2
        and isinstance(payload[0], str)
        and isinstance(payload[1], int)
        and not isinstance(payload[1], bool)
    ):
        return payload[0], payload[1]
    raise LinkError("this link is not valid")


def made_for(sub: Subscriber, sub_id: int | None, issued: datetime) -> bool:
    """Whether a link naming `sub_id` (None: an address-only link), made at `issued`,
    belongs to the row `sub`. An address-only link must not predate the row: tokens
    count whole seconds, so the row's creation second is compared."""
    if sub_id is not None:
        return sub.id == sub_id
    created = sub.created_at
    if created is None:
        return True
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return issued >= created.replace(microsecond=0)


def field_errors(exc: InputError) -> dict[str, str]:
    """Which form field an InputError is about ("form" if none), with a message fit
    for a person (the CLI's `--flag:` prefixes become field names)."""
    if isinstance(exc, QueryError):
        message = str(exc.args[0]) if exc.args else str(exc)
        return {"keywords": f"{message} (at character {exc.position + 1})"}
    message = str(exc)
    if message.startswith("--"):
        name, _, rest = message[2:].partition(":")
        key = name.strip().replace("-", "_")
        if key in {
            "timezone",
            "send_at",
            "frequency",
            "weekday",
            "max_papers",
            "interest",
            "topics",
        }:
            return {key: rest.strip()}
        if key in {"like", "likes"}:
            return {"likes": rest.strip()}
    if "email address" in message:
        return {"email": message}
    if "profile" in message or "topic" in message or "keyword" in message:
        return {"keywords": message}
    return {"form": message}
