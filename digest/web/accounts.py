"""What a visitor can do to a subscription, shared by the HTML pages and the JSON API:
sign up, confirm, change, pause, resume, unsubscribe, delete, and read a sent digest.

Every action that needs an identity takes a signed link token (no passwords). Sign-up
answers the same whether the address is new or known: a known address is sent its
manage link instead of a second confirmation, and nothing about it changes.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from digest import store, subscriptions
from digest.config import Settings
from digest.errors import InputError, QueryError
from digest.models import Digest, Subscriber, utcnow
from digest.rendering import make_environment, render_digest
from digest.rendering.compose import items_from_outbox
from digest.states import SubscriberStatus
from digest.store import Engine
from digest.tokens import TokenError, read_token
from digest.web.limits import SignupLimits
from digest.web.mails import Mail, confirmation_mail, manage_mail
from digest.web.topics import Topic, compose_profile, split_profile

# A known address gets its manage link; these statuses count as "known".
KNOWN_STATUSES = (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED, SubscriberStatus.SUSPENDED)
# A sign-up never confirmed is forgotten after this long (its link lives two days).
UNCONFIRMED_KEPT = timedelta(days=7)


class LinkError(InputError):
    """A link that is forged, expired, replayed or no longer points at anything."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason  # invalid | expired | used | gone


class TooManyRequests(InputError):
    pass


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

    def profile(self, catalogue: list[Topic]) -> str:
        text = compose_profile(self.keywords or "", self.topics or [], catalogue)
        if not text:
            raise InputError("the profile is empty: give at least one keyword or topic")
        return text

    def max_papers_number(self) -> int | None:
        value = self.max_papers
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
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
        if not isinstance(token, str) or not 10 <= len(token) <= 2000:
            raise LinkError("this link is not valid")
        try:
            return read_token(self.settings.secret_key, purpose, token)
        except TokenError as exc:
            reason = "expired" if "expired" in str(exc) else "invalid"
            raise LinkError(str(exc), reason) from None

    def _subscriber_for(self, purpose: str, token: str) -> Subscriber:
        address = self._read(purpose, token)
        if not isinstance(address, str):
            raise LinkError("this link is not valid")
        sub = store.get_subscriber(self.engine, address)
        if sub is None:
            raise LinkError("there is no subscription for this link any more", "gone")
        return sub

    def manage_subscriber(self, token: str) -> Subscriber:
        return self._subscriber_for("manage", token)

    def confirm_target(self, token: str) -> Subscriber:
        """The pending subscriber a confirm link is for, checked but not changed."""
        payload = self._read("confirm", token)
        if not (
            isinstance(payload, list)
            and len(payload) == 2
            and isinstance(payload[0], str)
            and isinstance(payload[1], int)
        ):
            raise LinkError("this link is not valid")
        sub = store.get_subscriber(self.engine, payload[0])
        if sub is None or sub.token_version != payload[1]:
            raise LinkError("this confirmation link has been replaced by a newer one", "used")
        if sub.status in KNOWN_STATUSES:
            raise LinkError("this subscription is already confirmed", "used")
        if sub.status != SubscriberStatus.PENDING:
            raise LinkError("this confirmation link is no longer valid", "used")
        return sub

    # ------------------------------------------------------------ sign-up

    def signup(self, address_typed: str, data: ProfileInput, client_ip: str) -> Mail | None:
        """Validate, then create or refresh a pending subscription; the mail to send.

        Returns None when the address already had its mails for today: the visitor
        gets the same answer, the mailbox gets nothing more.
        """
        sub = self.check_signup(address_typed, data, client_ip)
        return None if sub is None else self.register(sub)

    def check_signup(
        self, address_typed: str, data: ProfileInput, client_ip: str
    ) -> Subscriber | None:
        """The part of a sign-up the visitor waits for: validation and the limits,
        none of which depends on whether the address is known. Web routes run
        `register` after answering, so not even the response time tells."""
        sub = subscriptions.new_subscriber(
            self.settings,
            address_typed,
            data.profile(self.catalogue),
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
            return None
        return sub

    def register(self, sub: Subscriber) -> Mail:
        """Create or refresh the pending subscription `sub` (validated by
        `check_signup`); the mail to send: a confirmation, or a known address's
        manage link."""
        store.purge_unconfirmed(self.engine, utcnow() - UNCONFIRMED_KEPT)
        existing = store.get_subscriber(self.engine, sub.email)
        if existing is None:
            try:
                created = store.add_subscriber(self.engine, sub)
                return confirmation_mail(self.settings, created.email, created.token_version)
            except InputError:  # created by a concurrent request a moment ago
                existing = store.get_subscriber(self.engine, sub.email)
                if existing is None:
                    raise
        if existing.status in KNOWN_STATUSES:
            return manage_mail(self.settings, existing.email)
        version = existing.token_version + 1
        restarted = {"created_at": utcnow()} if existing.confirmed_at is None else {}
        store.update_subscriber(
            self.engine,
            existing.email,
            **restarted,
            status=SubscriberStatus.PENDING,
            keywords=sub.keywords,
            max_papers=sub.max_papers,
            timezone=sub.timezone,
            send_at=sub.send_at,
            frequency=sub.frequency,
            weekday=sub.weekday,
            token_version=version,
        )
        return confirmation_mail(self.settings, existing.email, version)

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
            profile = merged.profile(self.catalogue)
        return subscriptions.change(
            self.engine,
            self.settings,
            sub.email,
            keywords=profile,
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
        return manage_mail(self.settings, sub.email)

    def delete_account(self, token: str) -> None:
        sub = self.manage_subscriber(token)
        store.delete_subscriber(self.engine, sub.email)
        self.limits.forget_address(sub.email)

    def unsubscribe_target(self, token: str) -> str:
        address = self._read("unsubscribe", token)
        if not isinstance(address, str):
            raise LinkError("this link is not valid")
        return address

    def unsubscribe(self, token: str) -> str:
        """Takes effect at once; an address no longer stored is unsubscribed already."""
        address = self.unsubscribe_target(token)
        sub = store.get_subscriber(self.engine, address)
        if sub is not None and sub.status != SubscriberStatus.UNSUBSCRIBED:
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
        row = store.digest_for(self.engine, int(sub_id), edition)
        if row is None or not row.message:
            raise LinkError("this digest is no longer stored", "gone")
        full = self._full_digest_html(row, key)
        if full is not None:
            return full
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
        )
        return rendered.html


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
        if key in {"timezone", "send_at", "frequency", "weekday", "max_papers"}:
            return {key: rest.strip()}
    if "email address" in message:
        return {"email": message}
    if "profile" in message or "topic" in message or "keyword" in message:
        return {"keywords": message}
    return {"form": message}
