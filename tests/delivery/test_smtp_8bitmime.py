"""A digest's text part goes 8bit (UTF-8 as it is): with BODY=8BITMIME to a relay
that advertises it (RFC 6152), re-encoded 7bit (quoted-printable) for one that does
not, and signed 7bit with DKIM. Sent through the outbox to a real aiosmtpd server,
once as it is and once with 8BITMIME taken out of its EHLO reply."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import pytest
from conftest import dkim_key
from fault_smtp import FaultyHandler, FaultyServer
from sqlmodel import Session, select
from test_delivery import fast, send, subscriber

from digest.config import Settings
from digest.delivery.downgrade import seven_bit_message
from digest.delivery.smtp import SmtpTransport
from digest.matching import Hit, Match
from digest.models import Digest, Paper, Subscriber
from digest.rendering import Item, build_message, make_environment, render_digest

ADDR = "leser@example.org"


@dataclass
class Relay(FaultyHandler):
    """The fault server, advertising 8BITMIME or not, recording MAIL FROM options."""

    eight_bit: bool = True
    mail_options: list[list[str]] = field(default_factory=list)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: Any
    ) -> Any:
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        return [r for r in responses if self.eight_bit or "8BITMIME" not in r.upper()]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.mail_options.append(list(envelope.mail_options))
        return await super().handle_DATA(server, session, envelope)


def rendered_digest(settings: Settings):
    paper = Paper(
        seq=1,
        id="2411.00001",
        title="Schrödinger bridges for diffusion — über alles ☃",
        abstract="Wir zeigen, dass Diffusion = Brücke ist; façade naïve café. " * 12,
        authors=["Zoë Ångström", "Dmitri Иванов"],
    )
    items = [Item(paper, Match(paper.id, 1.0, [Hit("diffusion", "title")]))]
    env = make_environment(settings)
    return render_digest(env, settings, ADDR, items, date(2026, 11, 25), "1:2026-11-25", "x")


def queue_digest(engine, settings: Settings) -> tuple[Any, bytes]:
    rendered = rendered_digest(settings)
    data = build_message(settings, ADDR, rendered, "<d1@example.org>").as_bytes()
    with Session(engine) as s:
        sub = Subscriber(email=ADDR, keywords="diffusion")
        s.add(sub)
        s.flush()
        s.add(
            Digest(
                subscriber_id=sub.id,
                edition="2026-11-25",
                recipient=ADDR,
                message=data,
                message_id="<d1@example.org>",
            )
        )
        s.commit()
    return rendered, data


def parts(data: bytes) -> list[email.message.EmailMessage]:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.defects == []
    return list(msg.iter_parts())  # type: ignore[attr-defined]


def test_the_text_part_goes_8bit_to_a_relay_that_takes_it(engine, settings):
    rendered, data = queue_digest(engine, settings)
    assert b"Content-Transfer-Encoding: 8bit" in data and not data.isascii()
    handler = Relay(eight_bit=True)
    with FaultyServer(handler) as server:
        assert send(engine, fast(settings, server.port)).sent == 1
    assert "BODY=8BITMIME" in handler.mail_options[0]
    received = handler.accepted[0].message
    assert received == data  # the outbox's bytes, unchanged
    text, html = parts(received)
    assert text.get_content().replace("\r\n", "\n") == rendered.text


def test_a_relay_without_8bitmime_gets_the_text_re_encoded_7bit(engine, settings):
    rendered, data = queue_digest(engine, settings)
    handler = Relay(eight_bit=False)
    with FaultyServer(handler) as server:
        assert send(engine, fast(settings, server.port)).sent == 1
    assert not any(o.upper().startswith("BODY=") for o in handler.mail_options[0])
    received = handler.accepted[0].message
    assert received.isascii()
    lines = received.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)
    assert b"\n" not in received.replace(b"\r\n", b"")
    text, html = parts(received)
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content().replace("\r\n", "\n") == rendered.text
    assert "Schrödinger" in text.get_content() and "Иванов" in text.get_content()
    # the HTML and every header travel exactly as they were built
    original = parts(data)
    assert html.as_bytes() == original[1].as_bytes()
    head = data.split(b"\r\n\r\n", 1)[0]
    assert received.startswith(head + b"\r\n\r\n")
    # the outbox keeps what was built (8bit): a later send to another relay uses it
    with Session(engine) as s:
        assert s.exec(select(Digest)).one().message == data
    assert subscriber(engine, ADDR).bounces == 0


def test_a_signed_digest_is_signed_7bit_and_the_signature_holds_without_8bitmime(
    engine, settings, tmp_path
):
    import dkim

    key, record = dkim_key(tmp_path)
    rendered, _ = queue_digest(engine, settings)
    handler = Relay(eight_bit=False)
    with FaultyServer(handler) as server:
        s = fast(
            settings, server.port, dkim_key_file=key, dkim_selector="m", dkim_domain="example.org"
        )
        assert send(engine, s).sent == 1
    received = handler.accepted[0].message
    assert received.startswith(b"DKIM-Signature:") and received.isascii()
    assert dkim.verify(received, dnsfunc=lambda name, timeout=5: record)
    assert parts(received)[0].get_content().replace("\r\n", "\n") == rendered.text


def test_a_message_that_cannot_be_made_7bit_is_refused_with_a_clear_reply(settings):
    """8bit bytes in a part that is not labelled 8bit: not sent as 8bit to a relay
    that did not offer it, and not counted as the recipient's bounce."""
    bad = (
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "ünlabelled\r\n".encode()
    )
    assert seven_bit_message(bad) is None
    handler = Relay(eight_bit=False)
    with FaultyServer(handler) as server:
        transport = SmtpTransport(replace(settings, smtp_host="127.0.0.1", smtp_port=server.port))

        async def one():
            try:
                return await transport.send("a@example.org", "b@example.org", bad)
            finally:
                await transport.close()

        result = asyncio.run(one())
    assert not result.ok and result.permanent and "8BITMIME" in result.reply
    assert result.message_refused  # the message's fault, not a bounce of the address
    assert handler.accepted == []


@pytest.mark.parametrize(
    "message",
    [
        b"Subject: ascii\r\n\r\nplain\r\n",
        "Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÜber =\r\n.dot \r\n".encode(),
        # the label not the last header; a part with no Content-Type (text/plain)
        (
            "Content-Transfer-Encoding: 8BIT \r\nSubject: x\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + "ü" * 600 + "\r\n"
        ).encode(),
    ],
)
def test_a_single_part_message_round_trips(message: bytes):
    """7bit, lines within 76 characters, and the same content once decoded."""
    seven = seven_bit_message(message)
    assert seven is not None and seven.isascii()
    if not message.isascii():
        body = seven.split(b"\r\n\r\n", 1)[1]
        assert max(len(line) for line in body.split(b"\r\n")) <= 76
    before = email.message_from_bytes(message, policy=email.policy.default)
    after = email.message_from_bytes(seven, policy=email.policy.default)
    assert after.get_content() == before.get_content()  # type: ignore[attr-defined]
