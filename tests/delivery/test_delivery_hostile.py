"""Delivery as an attacker and an operator having a bad day would meet it: a relay
that refuses us (not the recipient) at RCPT, a DKIM key that cannot sign, hostile
addresses; against a real aiosmtpd server and a real SQLite file."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import replace

import pytest
from conftest import clean_exit, dkim_key, subscribe_many
from fault_smtp import FaultyHandler, FaultyServer
from test_delivery import (
    _self_signed,
    _server_tls,
    fast,
    queue,
    rows,
    send,
    subscriber,
)

from digest.delivery import make_transport
from digest.delivery.sender import send_due

STRICT = email.policy.default.clone(raise_on_defect=True)
ADDRS = [f"reader{i}@example.org" for i in range(3)]


@pytest.mark.parametrize(
    "reply",
    [
        "554 5.7.1 <{a}>: Relay access denied",
        "530 5.7.0 Authentication required",
        "550 relaying not permitted",
    ],
)
def test_a_relay_that_refuses_us_at_rcpt_bounces_nobody(engine, settings, reply):
    """A missing login makes Postfix refuse every RCPT with 554 5.7.1: that is the
    relay refusing us, and must not count a bounce on (and so suspend) everyone."""
    handler = FaultyHandler(rcpt={a: [reply.format(a=a)] * 3 for a in ADDRS})
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port, run_retry_window_seconds=0))
    assert report.bounced == 0 and report.sent == 0
    assert {d.status for d in rows(engine).values()} == {"retrying"}
    assert all(subscriber(engine, a).bounces == 0 for a in ADDRS)


def test_a_real_no_such_user_still_bounces(engine, settings):
    handler = FaultyHandler(rcpt={ADDRS[0]: ["550 5.1.1 <x>: Recipient address rejected"]})
    queue(engine, ADDRS[:1])
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port))
    assert report.bounced == 1 and subscriber(engine, ADDRS[0]).bounces == 1


@pytest.mark.parametrize(
    "key",
    [
        b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\n"
        b"-----END RSA PRIVATE KEY-----\n",  # cut short
    ],
)
def test_a_dkim_key_that_cannot_sign_is_refused_at_start(cli, env, tmp_path, key):
    """Before: accepted (it says PRIVATE KEY), then every message failed to sign at
    send time and was retried until it aged out, the run waiting on the retries."""
    path = tmp_path / "dkim.pem"
    path.write_bytes(key)
    dkim_env = {
        "DIGEST_DKIM_KEY_FILE": str(path),
        "DIGEST_DKIM_SELECTOR": "s1",
        "DIGEST_DKIM_DOMAIN": "example.org",
    }
    res = cli("retry", extra_env=dkim_env)
    clean_exit(res, 2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "DIGEST_DKIM_KEY_FILE" in lines[0] and "usable" in lines[0]


HOSTILE_REPLY = "5.1.1 first \x1b]0;owned\x07\x1b[2J line\r\n550 5.1.1 second\x00 line\x7f\u202e"


def _hostile_reply_run(engine, settings) -> tuple[dict, object]:
    handler = FaultyHandler(rcpt={ADDRS[0]: ["550-" + HOSTILE_REPLY]})
    queue(engine, ADDRS[:2])
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port))
    return rows(engine), report


def _printable(text: str) -> bool:
    return text.isprintable() and not any("\u202a" <= c <= "\u202e" for c in text)


def test_a_relay_reply_with_controls_is_stored_and_reported_printable(engine, settings):
    """The relay's words reach last_error, `digest status` and the run's errors: an
    escape sequence there would drive the operator's terminal."""
    state, report = _hostile_reply_run(engine, settings)
    bounced = state[ADDRS[0]]
    assert bounced.status == "bounced" and state[ADDRS[1]].status == "sent"
    assert bounced.last_error and _printable(bounced.last_error)
    assert "first" in bounced.last_error and "second" in bounced.last_error
    assert report.errors and all(_printable(e) for e in report.errors)


def test_a_relay_reply_with_a_nul_does_not_stop_a_postgresql_run(postgres_url, settings):
    """PostgreSQL refuses a NUL in text: before, the whole batch of results failed to
    record and the run ended with a traceback, the sent digests left 'sending'."""
    from digest import store

    engine = store.make_engine(postgres_url)
    store.init_db(engine)
    try:
        state, _ = _hostile_reply_run(engine, settings)
        assert {a: d.status for a, d in state.items()} == {
            ADDRS[0]: "bounced",
            ADDRS[1]: "sent",
        }
    finally:
        engine.dispose()


def test_starttls_required_but_not_offered_sends_nothing_and_says_which_setting(
    cli, env, smtp_sink
):
    """The sink offers no STARTTLS: never a fallback to plaintext, exit 1, the digest
    kept, and the error names the setting rather than aiosmtplib's sentence."""
    subscribe_many(env, ["tls@example.org"], "model OR learning")
    assert cli("fetch").code == 0
    res = cli(
        "run",
        "--no-fetch",
        extra_env={"DIGEST_SMTP_SECURITY": "starttls", "DIGEST_RUN_RETRY_WINDOW_SECONDS": "5"},
    )
    clean_exit(res, 1)
    assert "offers no STARTTLS (DIGEST_SMTP_SECURITY=starttls)" in res.stderr
    assert smtp_sink.messages() == []
    assert "retrying 1" in cli("status").stdout


@pytest.mark.parametrize(
    "setting,value",
    [
        ("DIGEST_DKIM_SELECTOR", "s1\r\nBcc: victim@example.net"),
        ("DIGEST_DKIM_SELECTOR", "s1; h=from"),
        ("DIGEST_DKIM_DOMAIN", "example.org\r\nBcc: victim@example.net"),
        ("DIGEST_DKIM_DOMAIN", "exa mple.org"),
    ],
)
def test_a_dkim_selector_or_domain_that_would_inject_a_header_is_refused(
    cli, env, tmp_path, setting, value
):
    """dkimpy writes both into DKIM-Signature unchecked: before, a line break in
    either added a header (a Bcc) to every digest."""
    key, _ = dkim_key(tmp_path, bits=1024)
    dkim_env = {
        "DIGEST_DKIM_KEY_FILE": str(key),
        "DIGEST_DKIM_SELECTOR": "s1",
        "DIGEST_DKIM_DOMAIN": "example.org",
        setting: value,
    }
    res = cli("retry", extra_env=dkim_env)
    clean_exit(res, 2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {setting}:"), res.stderr


def test_a_sendmail_path_that_cannot_run_stops_the_run_after_one_try(engine, settings, tmp_path):
    """A typo in DIGEST_SENDMAIL_PATH fails every message alike: before, each was
    tried (an attempt counted on all) and the run waited on the breaker's pauses."""
    queue(engine, ADDRS)
    s = replace(
        settings,
        transport="sendmail",
        sendmail_path=str(tmp_path / "no-such-sendmail"),
        relay_down_wait_seconds=0,
        run_retry_window_seconds=30,
        smtp_pool_size=1,  # one program at a time, so one try in all
    )
    report = asyncio.run(send_due(engine, s, make_transport(s)))
    assert report.attempts == 1 and "cannot run" in report.stopped
    assert sorted(d.attempts for d in rows(engine).values()) == [0, 0, 1]


@pytest.mark.parametrize(
    "reply,bounce",
    [
        ("554 5.7.1 Message rejected as spam", False),
        ("552 5.3.4 Message size exceeds fixed maximum message size", False),
        ("550 5.6.0 Malformed content", False),
        ("552 5.2.2 Mailbox full", True),
        ("550 5.1.1 User unknown", True),
        ("554 Transaction failed", True),  # no enhanced code: as before
    ],
)
def test_a_message_refused_for_its_content_or_size_is_no_bounce(engine, settings, reply, bounce):
    """A relay's spam filter or size limit refuses the digest, the same template for
    everyone: before, each subscriber reached got a bounce, all suspended within
    DIGEST_MAX_BOUNCES days. Such a refusal fails that digest, without a retry."""
    handler = FaultyHandler(data={ADDRS[0]: [reply] * 3})
    queue(engine, ADDRS[:1])
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port))
    row = rows(engine)[ADDRS[0]]
    assert handler.tries[ADDRS[0]] == 1  # never retried
    assert subscriber(engine, ADDRS[0]).bounces == (1 if bounce else 0)
    assert row.status == ("bounced" if bounce else "failed")
    assert reply[:3] in (row.last_error or "")
    assert report.failed == 1 and report.bounced == (1 if bounce else 0)


class _HangUpAfterAccepting(FaultyHandler):
    """Says 250 to the data, then closes the connection (a relay restarting, an idle
    limit of one message)."""

    async def handle_DATA(self, server, session, envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        transport = server.transport
        if transport is not None:
            asyncio.get_running_loop().call_later(0.01, transport.close)
        return reply


def test_a_relay_that_hangs_up_after_accepting_gets_each_digest_once(engine, settings):
    """The accepted message is recorded sent (never sent again); the next one, on the
    pooled connection the relay closed, goes through a fresh one in the same attempt."""
    handler = _HangUpAfterAccepting()
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port, smtp_pool_size=1))
    got = handler.by_recipient()
    assert {a: len(got.get(a, [])) for a in ADDRS} == dict.fromkeys(ADDRS, 1)
    assert report.sent == len(ADDRS) and report.failed == 0
    assert {d.attempts for d in rows(engine).values()} == {1}
    for accepted in handler.accepted:  # what arrived is valid MIME, strictly parsed
        msg = email.message_from_bytes(accepted.message, policy=STRICT)
        assert msg["To"] == accepted.recipient and msg.get_body(("plain",)) is not None
        assert msg["Return-Path"] is None  # the final MTA adds it, never the sender


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_a_tls_failure_says_tls_not_operation_not_permitted(engine, settings, tmp_path, security):
    """OpenSSL's errno 1 read as a system error said "Operation not permitted" both
    for a relay without TLS on that port and for a certificate not trusted."""
    cert, key = _self_signed(tmp_path)
    queue(engine, ADDRS[:1])
    extra = {"tls_context": _server_tls(cert, key)} if security == "starttls" else {}
    with FaultyServer(FaultyHandler(), **extra) as server:  # plain, or an untrusted cert
        s = fast(settings, server.port, smtp_security=security, relay_down_wait_seconds=0)
        report = send(engine, s)
    (error,) = report.errors
    assert "Operation not permitted" not in error
    expected = "wrong version number" if security == "ssl" else "certificate verify failed"
    assert f"connect: TLS: {expected}" in error, error
    assert rows(engine)[ADDRS[0]].status == "retrying"
