"""Shared by the inbound tests: the fixture messages, the subscribers they name, and
the token substitution (tests/fixtures/inbound/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from digest import store, subscriptions
from digest.config import Settings
from digest.models import Subscriber
from digest.tokens import make_mail_token

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inbound"
PEOPLE = {
    "ada": "ada@example.org",
    "bob": "bob@example.net",
    "carol": "carol@example.com",
    "dan": "dan@example.org",
    "erin": "erin@contoso.example",
    "frank": "frank@mailhost.example",
}

# fixture -> (the subscriber its tokens belong to, what `digest inbound` must do);
# the README's table. Only the actions bounce / complaint / unsubscribe change a row.
EXPECTED: dict[str, tuple[str | None, str]] = {
    "dsn/postfix_failed_5.1.1.eml": ("ada", "bounce"),
    "dsn/postfix_delayed_4.4.1.eml": ("ada", "transient"),
    "dsn/postfix_success_relayed.eml": ("ada", "ignored"),
    "dsn/exim_classic_plain.eml": ("bob", "bounce"),
    "dsn/exim_dsn_multipart.eml": ("carol", "bounce"),
    "dsn/gmail_failure_5.1.1.eml": ("dan", "bounce"),
    "dsn/office365_ndr_5.1.10.eml": ("erin", "bounce"),
    "dsn/vague_verp_only.eml": ("ada", "bounce"),
    "dsn/autoreply_to_verp.eml": ("ada", "ignored"),
    "dsn/forwarded_mismatch.eml": ("ada", "bounce"),
    "arf/arf_abuse_redacted_yahoo_style.eml": ("ada", "complaint"),
    "arf/arf_abuse_headers_only.eml": ("frank", "complaint"),
    "arf/arf_not_spam.eml": ("ada", "ignored"),
    "unsubscribe/reply_blank_token_in_address.eml": ("ada", "unsubscribe"),
    "unsubscribe/gmail_button_token_in_subject.eml": ("dan", "unsubscribe"),
    "unsubscribe/forged_no_token.eml": ("ada", "ignored"),
    "unsubscribe/forged_bad_token.eml": ("ada", "ignored"),
    "unsubscribe/token_owner_differs_from_sender.eml": ("ada", "unsubscribe"),
    "hostile/no_headers.eml": ("ada", "ignored"),
    "hostile/headers_only.eml": ("ada", "ignored"),
    "hostile/multipart_no_boundary.eml": (None, "ignored"),
    "hostile/dsn_never_sent_to.eml": (None, "ignored"),
    "hostile/nested_rfc822_50.eml": (None, "ignored"),
    "hostile/dsn_hostile_final_recipient.eml": (None, "ignored"),
    "hostile/non_utf8_bytes.eml": ("ada", "bounce"),
}
CHANGES = {"bounce", "complaint", "unsubscribe"}


def add_people(engine: store.Engine, settings: Settings) -> dict[str, int]:
    """The six subscribers the fixtures name, active; name -> row id."""
    ids = {}
    for name, address in PEOPLE.items():
        sub = subscriptions.new_subscriber(settings, address, "diffusion", send_at="00:00")
        ids[name] = store.add_subscriber(engine, sub).id
    return ids


def with_tokens(data: bytes, secret: str, subscriber_id: int) -> bytes:
    """The fixture with `<TOKEN>` / `<UNSUB_TOKEN>` made for `subscriber_id`."""
    bounce = make_mail_token(secret, "bounce", subscriber_id).encode()
    unsub = make_mail_token(secret, "unsubscribe-mail", subscriber_id).encode()
    return data.replace(b"<UNSUB_TOKEN>", unsub).replace(b"<TOKEN>", bounce)


def snapshot(engine: store.Engine) -> dict[str, tuple[str, int, int]]:
    """Every subscriber's (status, bounces, complaints)."""
    rows: list[Subscriber] = store.list_subscribers(engine)
    return {s.email: (s.status, s.bounces, s.complaints) for s in rows}


def expected_after(
    before: dict[str, tuple[str, int, int]], owner: str | None, action: str
) -> dict[str, tuple[str, int, int]]:
    """`before` with what `action` does to `owner` (max bounces not reached)."""
    after = dict(before)
    if owner is None or action not in CHANGES:
        return after
    address = PEOPLE[owner]
    status, bounces, complaints = after[address]
    if action == "bounce":
        after[address] = (status, bounces + 1, complaints)
    elif action == "complaint":
        after[address] = ("unsubscribed", bounces, complaints + 1)
    else:
        after[address] = ("unsubscribed", bounces, complaints)
    return after


def run_inbound(
    env: dict[str, str], data: bytes, *args: str | bytes
) -> subprocess.CompletedProcess[bytes]:
    """`digest inbound --json ARGS` as the real command, `data` on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "digest", "inbound", "--json", *args],
        input=data,
        env=env,
        capture_output=True,
        timeout=60,
    )
