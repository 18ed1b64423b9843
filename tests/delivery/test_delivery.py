"""Delivery against a real aiosmtpd server that misbehaves on purpose: deferrals,
refusals, dropped connections, silence, a server that comes up late; plus the rate
limit, the circuit breaker, leases, and `digest status` / `digest retry`."""

from __future__ import annotations

import asyncio
import email.policy
import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import dkim_key, free_port, wait_for
from fault_smtp import DROP, FaultyHandler, FaultyServer, SilentServer
from sqlmodel import Session, select

from digest import store
from digest.config import Settings
from digest.delivery.sender import SendReport, send_due
from digest.delivery.smtp import SmtpTransport
from digest.models import Digest, Subscriber, utcnow
from digest.store.outbox import make_owner

EDITION = "2026-11-25"


def make_message(to: str, n: int = 0) -> bytes:
    """CRLF line ends, as the renderer builds digests (so the transport's own DATA path
    is the one tested; tests/delivery/test_smtp_wire.py covers LF messages too)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Paper Digest <digest@example.org>"
    msg["To"] = to
    msg["Subject"] = f"3 new papers for you ({n})"
    msg["Message-ID"] = f"<{n}.{to.replace('@', '.')}@digest.example.org>"
    msg["List-Unsubscribe"] = f"<https://digest.example.org/unsubscribe/{n}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Hello\n.\nA line with a dot, and some text.\n")
    return msg.as_bytes()


def queue(engine, addresses: list[str], edition: str = EDITION) -> None:
    """Subscribers (created if new) and one rendered outbox row each for `edition`."""
    with Session(engine) as s:
        for n, address in enumerate(addresses):
            sub = s.exec(select(Subscriber).where(Subscriber.email == address)).first()
            if sub is None:
                sub = Subscriber(email=address, keywords="x")
                s.add(sub)
                s.flush()
            s.add(
                Digest(
                    subscriber_id=sub.id,
                    edition=edition,
                    recipient=address,
                    message=make_message(address, n),
                    message_id=f"<{n}>",
                )
            )
        s.commit()


def rows(engine) -> dict[str, Digest]:
    with Session(engine) as s:
        return {d.recipient: d for d in s.exec(select(Digest).order_by(Digest.id))}


def subscriber(engine, address: str) -> Subscriber:
    sub = store.get_subscriber(engine, address)
    assert sub is not None
    return sub


def fast(settings: Settings, port: int, **changes: object) -> Settings:
    """Small delays so that retries happen inside one quick run."""
    base = dict(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout=2.0,
        retry_base_seconds=0.05,
        run_retry_window_seconds=10.0,
        smtp_pool_size=2,
    )
    return replace(settings, **{**base, **changes})


def send(engine, settings: Settings) -> SendReport:
    return asyncio.run(send_due(engine, settings, SmtpTransport(settings)))


ADDRS = [f"user{i}@example.org" for i in range(4)]


@pytest.mark.parametrize(
    "stage,reply",
    [
        ("rcpt", "421 4.3.2 Service shutting down"),
        ("rcpt", "450 4.2.1 Mailbox busy"),
        ("rcpt", "451 4.3.0 Local error"),
        ("data", "421 4.3.2 Closing"),
        ("data", "451 4.3.0 Try again later"),
    ],
)
def test_deferred_then_accepted_is_delivered_once(engine, settings, stage, reply):
    handler = FaultyHandler(**{stage: {ADDRS[1]: [reply, reply]}})
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port))
    got = handler.by_recipient()
    assert {a: len(got.get(a, [])) for a in ADDRS} == dict.fromkeys(ADDRS, 1)
    assert report.sent == 4 and report.failed == 0
    state = rows(engine)
    assert state[ADDRS[1]].status == "sent" and state[ADDRS[1]].attempts == 3
    assert state[ADDRS[0]].attempts == 1
    assert state[ADDRS[1]].last_error and state[ADDRS[1]].last_error.startswith(reply[:3])


def test_550_bounces_that_address_and_delivers_the_others(engine, settings):
    handler = FaultyHandler(rcpt={ADDRS[2]: ["550 5.1.1 No such user"] * 5})
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port))
    got = handler.by_recipient()
    assert sorted(got) == sorted(a for a in ADDRS if a != ADDRS[2])
    assert all(len(v) == 1 for v in got.values())
    assert handler.tries[ADDRS[2]] == 1  # a permanent refusal is never retried
    state = rows(engine)
    assert state[ADDRS[2]].status == "bounced"
    assert "550" in (state[ADDRS[2]].last_error or "")
    assert subscriber(engine, ADDRS[2]).bounces == 1
    assert subscriber(engine, ADDRS[2]).status == "active"
    assert report.bounced == 1 and report.sent == 3


def test_hard_bounces_suspend_the_subscriber_and_stop_later_digests(engine, settings):
    victim = "gone@example.org"
    handler = FaultyHandler(rcpt={victim: ["550 5.1.1 No such user"] * 10})
    settings = replace(settings, max_bounces=2)
    with FaultyServer(handler) as server:
        s = fast(settings, server.port)
        for day in ("2026-11-23", "2026-11-24"):
            queue(engine, [victim, ADDRS[0]], edition=day)
            report = send(engine, s)
        assert report.suspended == 1
        assert subscriber(engine, victim).status == "suspended"
        assert subscriber(engine, victim).bounces == 2
        queue(engine, [victim, ADDRS[0]], edition="2026-11-25")
        send(engine, s)
    assert handler.tries[victim] == 2  # the third digest was not even tried
    with Session(engine) as session:
        third = session.exec(
            select(Digest).where(Digest.recipient == victim, Digest.edition == "2026-11-25")
        ).one()
    assert third.status == "failed" and "no longer active" in (third.last_error or "")
    assert len(handler.by_recipient()[ADDRS[0]]) == 3


def test_connection_dropped_in_the_middle_of_data_is_retried_once(engine, settings):
    handler = FaultyHandler(data={ADDRS[0]: [DROP]})
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port))
    got = handler.by_recipient()
    assert {a: len(got[a]) for a in ADDRS} == dict.fromkeys(ADDRS, 1)
    assert rows(engine)[ADDRS[0]].attempts == 2
    assert report.sent == 4


def test_a_server_that_never_answers_times_out_and_the_run_ends(engine, settings):
    queue(engine, ADDRS[:2])
    with SilentServer() as server:
        s = fast(
            settings,
            server.port,
            smtp_timeout=0.3,
            retry_base_seconds=30,
            run_retry_window_seconds=1.0,
        )
        report = send(engine, s)
    state = rows(engine)
    assert {d.status for d in state.values()} == {"retrying"}
    assert all("timeout" in (d.last_error or "").lower() for d in state.values())
    assert all(d.next_attempt_at and d.next_attempt_at > utcnow() for d in state.values())
    assert report.deferred == 2 and report.sent == 0 and report.failed == 2


def test_retries_stop_at_the_maximum_age(engine, settings):
    queue(engine, ADDRS[:1])
    with SilentServer() as server:
        s = fast(settings, server.port, smtp_timeout=0.2, retry_max_age_hours=0.0)
        report = send(engine, s)
    row = rows(engine)[ADDRS[0]]
    assert row.status == "failed" and row.attempts == 1
    assert "gave up after 1 attempt" in (row.last_error or "")
    assert report.gave_up == 1


def test_a_server_that_comes_up_late_gets_everything_once(engine, settings):
    queue(engine, ADDRS)
    port = free_port()
    s = fast(settings, port, retry_base_seconds=0.2, run_retry_window_seconds=20)
    result: list[SendReport] = []
    runner = threading.Thread(target=lambda: result.append(send(engine, s)))
    runner.start()
    try:
        wait_for(lambda: all(d.attempts >= 1 for d in rows(engine).values()))
        assert {d.status for d in rows(engine).values()} <= {"retrying", "sending"}
        handler = FaultyHandler()
        with FaultyServer(handler, port=port):
            runner.join(timeout=30)
    finally:
        runner.join(timeout=30)
    assert result and result[0].sent == 4
    got = handler.by_recipient()
    assert {a: len(got[a]) for a in ADDRS} == dict.fromkeys(ADDRS, 1)
    assert {d.status for d in rows(engine).values()} == {"sent"}


def test_rerun_of_a_finished_edition_sends_nothing(engine, settings):
    handler = FaultyHandler()
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        s = fast(settings, server.port)
        assert send(engine, s).sent == 4
        again = send(engine, s)
    assert again.sent == 0 and again.attempts == 0
    assert len(handler.accepted) == 4


def test_two_senders_at_once_never_send_a_row_twice(engine, settings):
    addresses = [f"twice{i}@example.org" for i in range(450)]  # more than one claim each
    handler = FaultyHandler(delay=0.001)
    queue(engine, addresses)
    with FaultyServer(handler) as server:
        s = fast(settings, server.port)
        reports: list[SendReport] = []
        senders = [threading.Thread(target=lambda: reports.append(send(engine, s))) for _ in "ab"]
        for t in senders:
            t.start()
        for t in senders:
            t.join(timeout=60)
    # Both senders ran to the end; how the rows split between them is up to the
    # scheduler of a loaded machine (one may take them all), the guarantee is not.
    assert len(reports) == 2 and sum(r.sent for r in reports) == 450
    assert {a: len(v) for a, v in handler.by_recipient().items()} == dict.fromkeys(addresses, 1)


def test_the_pool_reuses_its_connections(engine, settings):
    addresses = [f"p{i}@example.org" for i in range(30)]
    handler = FaultyHandler()
    queue(engine, addresses)
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port, smtp_pool_size=3))
    assert report.sent == 30
    assert 1 <= handler.ehlos <= 3  # one EHLO per connection


def test_a_connection_the_server_closed_while_idle_is_replaced(engine, settings):
    handler = FaultyHandler()
    with FaultyServer(handler, timeout=0.3) as server:
        s = fast(settings, server.port, smtp_pool_size=1)

        async def two_sends_with_an_idle_gap() -> list[bool]:
            transport = SmtpTransport(s)
            await transport.open()
            first = await transport.send(s.from_address, ADDRS[0], make_message(ADDRS[0]))
            client = transport._idle._queue[0]  # the pooled connection
            while client.is_connected:  # the server closes it after 0.3 s idle
                await asyncio.sleep(0.02)
            second = await transport.send(s.from_address, ADDRS[1], make_message(ADDRS[1]))
            await transport.close()
            return [first.ok, second.ok]

        assert asyncio.run(two_sends_with_an_idle_gap()) == [True, True]
    assert sorted(handler.by_recipient()) == sorted(ADDRS[:2])
    assert handler.ehlos == 2


def test_rate_limit_per_second_spaces_the_sends(engine, settings):
    handler = FaultyHandler()
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        started = time.time()
        send(engine, fast(settings, server.port, rate_per_second=10.0))
    assert len(handler.accepted) == 4
    # The k-th send may start no sooner than (k-1)/rate after the first: 3 gaps of 0.1 s.
    assert max(a.at for a in handler.accepted) - started >= 0.3


def test_rate_limit_per_hour_leaves_the_rest_for_the_next_run(engine, settings):
    handler = FaultyHandler()
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port, rate_per_hour=3))
        assert report.sent == 3 and report.stopped == "rate limit"
        later = send(engine, fast(settings, server.port, rate_per_hour=3))
    assert later.sent == 0  # the hour's allowance is shared between runs
    assert len(handler.accepted) == 3
    assert sorted(d.status for d in rows(engine).values()) == ["pending", "sent", "sent", "sent"]


def test_a_breaker_probe_counts_against_the_rate_limit(engine, settings):
    """Before, the message that probes the relay after the breaker's pause went out
    without a slot: one more send an hour than DIGEST_RATE_PER_HOUR allows."""
    handler = FaultyHandler(rcpt={ADDRS[0]: ["451 4.3.0 Try later"]})
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        s = fast(settings, server.port, rate_per_hour=2, breaker_threshold=1, smtp_pool_size=1)
        report = send(engine, s)
    assert report.breaker_trips == 1 and report.stopped == "rate limit", report
    assert sum(handler.tries.values()) == 2, handler.tries  # the failed send and the probe
    assert report.sent == 1


def test_the_circuit_breaker_pauses_a_run_against_a_broken_relay(engine, settings):
    addresses = [f"b{i}@example.org" for i in range(12)]
    handler = FaultyHandler(rcpt={a: ["451 4.3.0 relay broken"] * 50 for a in addresses})
    queue(engine, addresses)
    with FaultyServer(handler) as server:
        s = fast(
            settings,
            server.port,
            breaker_threshold=3,
            smtp_pool_size=1,
            retry_base_seconds=5,
            run_retry_window_seconds=1,
        )
        report = send(engine, s)
    assert report.breaker_trips == 1 and "circuit breaker" in report.stopped
    tried = [d for d in rows(engine).values() if d.attempts]
    assert len(tried) == 3  # the other nine kept their whole retry schedule
    assert sorted({d.status for d in rows(engine).values()}) == ["pending", "retrying"]


def test_after_a_pause_the_breaker_probes_and_the_run_goes_on(engine, settings):
    addresses = [f"c{i}@example.org" for i in range(8)]
    handler = FaultyHandler(rcpt={a: ["421 4.3.2 down"] for a in addresses[:3]})
    queue(engine, addresses)
    with FaultyServer(handler) as server:
        s = fast(settings, server.port, breaker_threshold=3, smtp_pool_size=1)
        report = send(engine, s)
    assert report.breaker_trips == 1
    assert report.sent == 8
    assert all(len(v) == 1 for v in handler.by_recipient().values())


def test_a_lease_of_a_dead_process_is_taken_over_and_a_live_one_is_not(engine, settings):
    queue(engine, ADDRS[:2])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = make_owner().split("|")[0]
    with Session(engine) as s:
        a, b = s.exec(select(Digest).order_by(Digest.id)).all()
        for row, owner in ((a, f"{host}|{dead.pid}|old"), (b, "elsewhere|1|x")):
            row.status, row.lease_owner = "sending", owner
            row.lease_until = utcnow().replace(year=2100)
            s.add(row)
        s.commit()
    handler = FaultyHandler()
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port))
    assert report.sent == 1
    assert list(handler.by_recipient()) == [ADDRS[0]]
    assert rows(engine)[ADDRS[1]].status == "sending"


def test_auth_failure_is_not_a_bounce(engine, settings, tmp_path):
    cert, key = _self_signed(tmp_path)
    handler = FaultyHandler()
    queue(engine, ADDRS[:1])
    with FaultyServer(
        handler,
        tls_context=_server_tls(cert, key),
        require_starttls=True,
        auth_required=True,
        authenticator=_Authenticator(),
    ) as server:
        s = fast(
            settings,
            server.port,
            smtp_security="starttls",
            smtp_username="digest",
            smtp_password="wrong",
            run_retry_window_seconds=0,
        )
        with _trusting(cert):
            report = send(engine, s)
    row = rows(engine)[ADDRS[0]]
    assert row.status == "retrying" and "535" in (row.last_error or "")
    assert subscriber(engine, ADDRS[0]).bounces == 0
    assert report.sent == 0
    # the error names what to check
    assert any("535" in e and "DIGEST_SMTP_PASSWORD" in e for e in report.errors), report.errors


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_auth(engine, settings, tmp_path, security):
    cert, key = _self_signed(tmp_path)
    handler = FaultyHandler()
    queue(engine, ADDRS)
    tls = _server_tls(cert, key)
    extra = (
        {"tls_context": tls, "require_starttls": True}
        if security == "starttls"
        else {"ssl_context": tls, "auth_require_tls": False}  # aiosmtpd: TLS from the start
    )
    with FaultyServer(
        handler, auth_required=True, authenticator=_Authenticator(), **extra
    ) as server:
        s = fast(
            settings,
            server.port,
            smtp_security=security,
            smtp_username="digest",
            smtp_password="s3cret",
        )
        with _trusting(cert):
            report = send(engine, s)
    assert report.sent == 4, report.errors
    assert sorted(handler.by_recipient()) == sorted(ADDRS)


def test_dkim_signature_covers_both_list_unsubscribe_headers(engine, settings, tmp_path):
    import dkim

    key, record = dkim_key(tmp_path)
    handler = FaultyHandler()
    queue(engine, ADDRS[:1])
    with FaultyServer(handler) as server:
        s = fast(
            settings,
            server.port,
            dkim_key_file=key,
            dkim_selector="mail",
            dkim_domain="example.org",
        )
        assert send(engine, s).sent == 1
    received = handler.accepted[0].message
    assert received.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.example.org."
        return record

    assert dkim.verify(received, dnsfunc=dns)
    header = received.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"").replace(b" ", b"")
    signed = header.split(b"h=", 1)[1].split(b";", 1)[0].lower().split(b":")
    assert b"list-unsubscribe" in signed and b"list-unsubscribe-post" in signed
    # A changed List-Unsubscribe-Post breaks the signature.
    tampered = received.replace(b"One-Click", b"One-Klick")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_half_configured_dkim_is_a_config_error(engine, settings):
    from digest.errors import ConfigError

    queue(engine, ADDRS[:1])
    with pytest.raises(ConfigError, match="DIGEST_DKIM_"):
        send(engine, replace(settings, dkim_selector="mail"))
    assert rows(engine)[ADDRS[0]].status == "pending"


# ---------------------------------------------------------------- TLS helpers


class _Authenticator:
    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        ok = auth_data.login == b"digest" and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _server_tls(cert: Path, key: Path):
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class _trusting:
    """Trust `cert` for the client side, as SSL_CERT_FILE does for OpenSSL."""

    def __init__(self, cert: Path) -> None:
        self.cert = cert

    def __enter__(self) -> None:
        import os

        self.old = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = str(self.cert)

    def __exit__(self, *exc: object) -> None:
        import os

        if self.old is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = self.old


# ---------------------------------------------------------------- other transports


def test_file_transport_writes_one_eml_per_message(engine, settings, tmp_path):
    from digest.delivery import make_transport

    folder = tmp_path / "out"
    queue(engine, ADDRS)
    s = replace(settings, transport="file", outbox_dir=folder)
    report = asyncio.run(send_due(engine, s, make_transport(s)))
    assert report.sent == 4
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 4 and not list(folder.glob("*.part"))
    assert b"List-Unsubscribe-Post" in files[0].read_bytes()


def test_sendmail_transport_hands_each_message_to_the_program(engine, settings, tmp_path):
    from digest.delivery import make_transport

    spool = tmp_path / "spool"
    spool.mkdir()
    script = tmp_path / "sendmail"
    # A stand-in MTA: keeps what it gets, says EX_TEMPFAIL once for user1, EX_NOUSER for user2.
    script.write_text(
        "#!/bin/sh\n"
        f'spool="{spool}"\n'
        'rcpt="$5"\n'
        'if [ "$rcpt" = "user2@example.org" ]; then echo "no such user" >&2; exit 67; fi\n'
        'if [ "$rcpt" = "user1@example.org" ] && [ ! -e "$spool/once" ]; then\n'
        '  touch "$spool/once"; exit 75; fi\n'
        'printf "%s\\n" "$*" > "$spool/$rcpt.args"\n'
        'cat > "$spool/$rcpt.eml"\n'
    )
    script.chmod(0o755)
    queue(engine, ADDRS)
    s = replace(
        settings,
        transport="sendmail",
        sendmail_path=str(script),
        retry_base_seconds=0.05,
        run_retry_window_seconds=10,
    )
    report = asyncio.run(send_due(engine, s, make_transport(s)))
    assert report.sent == 3 and report.bounced == 1
    state = rows(engine)
    assert state["user1@example.org"].attempts == 2
    assert state["user2@example.org"].status == "bounced"
    args = (spool / "user0@example.org.args").read_text().split()
    assert args == ["-i", "-f", "digest@example.org", "--", "user0@example.org"]
    body = (spool / "user0@example.org.eml").read_bytes()
    assert b"A line with a dot" in body


def test_sendmail_gets_an_8bit_digest_re_encoded_7bit(engine, settings, tmp_path):
    """The program cannot say whether the relays after it take 8bit (msmtp sends
    it on as it is): it gets the digest 7bit, decoding to the same text."""
    from digest.delivery import make_transport

    spool = tmp_path / "spool"
    spool.mkdir()
    script = tmp_path / "sendmail"
    script.write_text(f'#!/bin/sh\ncat > "{spool}/got.eml"\n')
    script.chmod(0o755)
    text = "Über die Lösung: naïve café, 東京, and a last line\r\n"
    message = (
        "From: digest@example.org\r\nTo: user0@example.org\r\nSubject: x\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + text
    ).encode()
    queue(engine, ADDRS[:1])
    with Session(engine) as session:
        row = session.exec(select(Digest)).one()
        row.message = message
        session.add(row)
        session.commit()
    s = replace(settings, transport="sendmail", sendmail_path=str(script))
    assert asyncio.run(send_due(engine, s, make_transport(s))).sent == 1
    got = (spool / "got.eml").read_bytes()
    assert got.isascii() and b"quoted-printable" in got
    part = email.message_from_bytes(got, policy=email.policy.default)
    assert part.get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n")


# ---------------------------------------------------------------- CLI


def test_status_and_retry_commands(engine, settings, cli, env):
    handler = FaultyHandler(rcpt={ADDRS[3]: ["550 5.1.1 unknown"]})
    queue(engine, ADDRS)
    with FaultyServer(handler) as server:
        extra = {
            "DIGEST_SMTP_PORT": str(server.port),
            "DIGEST_RETRY_MAX_AGE_HOURS": "0",
            "DIGEST_RETRY_BASE_SECONDS": "0.05",
        }
        handler.rcpt[ADDRS[2]] = ["451 4.3.0 later"]
        # The send part of `digest run`, through the CLI's retry command first: nothing
        # has failed yet, so it pushes nothing and sends the due rows.
        first = cli("retry", extra_env=extra)
        assert first.code == 1, first.stderr
        assert "pushed back to the outbox: 0" in first.stdout
        status = cli("status", "--json", extra_env=extra)
        assert status.code == 0, status.stderr
        data = json.loads(status.stdout)
        (edition,) = data["editions"]
        assert edition["edition"] == EDITION
        assert (edition["sent"], edition["failed"], edition["bounced"], edition["pending"]) == (
            2,
            1,
            1,
            0,
        )
        errors = {e["recipient"]: e for e in data["last_errors"]}
        assert errors[ADDRS[3]]["status"] == "bounced" and "550" in errors[ADDRS[3]]["error"]
        assert "gave up" in errors[ADDRS[2]]["error"]
        text = cli("status", extra_env=extra)
        assert EDITION in text.stdout and "550" in text.stdout
        again = cli("retry", "--edition", EDITION, extra_env=extra)
        assert again.code == 0, again.stderr
        assert "pushed back to the outbox: 1" in again.stdout
    assert {a: len(v) for a, v in handler.by_recipient().items()} == {
        ADDRS[0]: 1,
        ADDRS[1]: 1,
        ADDRS[2]: 1,
    }
    subs = json.loads(cli("subscribers", "--json").stdout)
    by = {s["email"]: s for s in subs}
    assert by[ADDRS[3]]["bounces"] == 1 and by[ADDRS[3]]["status"] == "active"
    bad = cli("retry", "--edition", "yesterday")
    assert bad.code == 2 and "YYYY-MM-DD" in bad.stderr and "Traceback" not in bad.stderr


def test_an_outbox_queued_by_an_older_digest_is_sent_after_the_upgrade(engine, settings):
    """Older databases kept the message bytes in `digest.message`; init moves them to
    their own table (claims and results then touch small rows) and drops the column."""
    queue(engine, ADDRS[:2])
    old_bytes = {a: make_message(a, 100 + n) for n, a in enumerate(ADDRS[:2])}
    with engine.begin() as conn:  # back to the old layout: the bytes inside the row
        conn.exec_driver_sql("ALTER TABLE digest ADD COLUMN message BLOB")
        for address, data in old_bytes.items():
            conn.exec_driver_sql(
                "UPDATE digest SET message = ? WHERE recipient = ?", (data, address)
            )
        conn.exec_driver_sql("DELETE FROM digestmessage")
    store.init_db(engine)
    assert store.move_digest_messages(engine) == 0  # done once, idempotent
    with engine.connect() as conn:
        columns = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(digest)")}
    assert "message" not in columns
    assert {a: r.message for a, r in rows(engine).items()} == old_bytes
    handler = FaultyHandler()
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port))
    assert report.sent == 2
    got = handler.by_recipient()
    assert {a: got[a][0].message_id for a in old_bytes} == {
        a: f"<{100 + n}.{a.replace('@', '.')}@digest.example.org>" for n, a in enumerate(ADDRS[:2])
    }


def test_deleting_a_subscriber_deletes_their_messages(engine):
    queue(engine, ADDRS[:2])
    assert store.delete_subscriber(engine, ADDRS[0])
    with engine.connect() as conn:
        left = conn.exec_driver_sql("SELECT count(*) FROM digestmessage").scalar_one()
    assert left == 1


def test_a_digest_without_a_rendered_message_is_never_sent_empty(engine, settings):
    """A digest that failed at build time has no message; `digest retry` leaves it,
    and a due row without one is failed visibly instead of mailed as an empty message."""
    from digest.store.outbox import NO_MESSAGE, retry_failed

    queue(engine, ADDRS[:1])
    with Session(engine) as s:
        for address, status in ((ADDRS[1], "failed"), (ADDRS[2], "pending")):
            sub = Subscriber(email=address, keywords="x")
            s.add(sub)
            s.flush()
            s.add(Digest(subscriber_id=sub.id, edition=EDITION, recipient=address, status=status))
        s.commit()
    assert retry_failed(engine) == 0
    handler = FaultyHandler()
    with FaultyServer(handler) as server:
        report = send(engine, fast(settings, server.port))
    assert sorted(handler.by_recipient()) == [ADDRS[0]]
    assert report.sent == 1
    state = rows(engine)
    assert state[ADDRS[1]].status == "failed"
    assert state[ADDRS[2]].status == "failed" and state[ADDRS[2]].last_error == NO_MESSAGE
