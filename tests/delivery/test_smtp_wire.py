"""The SMTP transport sends DATA itself for CRLF messages (`data_payload`, without
aiosmtplib's regex passes): the bytes must be exactly those aiosmtplib would have
sent, and refusals, drops and timeouts at DATA must end as they did through
aiosmtplib. Checked against aiosmtplib's own functions, and on a real aiosmtpd server
with the same message sent both ways."""

from __future__ import annotations

import asyncio
import email.policy
from dataclasses import replace
from email.message import EmailMessage

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from fault_smtp import DROP, FaultyHandler, FaultyServer

from digest.config import Settings
from digest.delivery.base import SendResult
from digest.delivery.smtp import SmtpTransport, data_payload

SENDER = "Paper Digest <digest@example.org>"


def digest_like(linesep: bytes = b"\r\n") -> bytes:
    """A multipart message as a digest is, with what DATA has to take care of: lines
        starting with "." (a lone "." too), raw UTF-8, a line of 998 bytes (the most SMTP
    allows; longer ones are in EDGES, checked without a server), and
        quoted-printable HTML made by the `email` package."""
    html = EmailMessage(policy=email.policy.SMTP)
    html.set_content("<p>Über " + "diffusion " * 40 + "</p>", subtype="html")
    lines = [
        b"From: " + SENDER.encode(),
        b"To: reader@example.net",
        b"Subject: =?utf-8?q?Schr=C3=B6dinger?= bridges",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/alternative; boundary="b"',
        b"",
        b"--b",
        b'Content-Type: text/plain; charset="utf-8"',
        b"Content-Transfer-Encoding: 8bit",
        b"",
        "Über diffusion ☃".encode(),
        b".",
        b"..",
        b". a line that starts with a dot",
        b"long " * 199 + b"end",
        b"",
        b"--b",
        html.as_bytes().rstrip(b"\r\n"),
        b"--b--",
        b"",
    ]
    return linesep.join(lines).replace(b"\r\n", linesep)


def aiosmtplib_payload(message: bytes) -> bytes:
    """What aiosmtplib's execute_data_command writes after DATA."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"


# (message, whether it is CRLF throughout, so our path sends it)
EDGES = [
    (b"Subject: a\r\n\r\nbody\r\n", True),
    (b".\r\n", True),
    (b"..\r\n.\r\n...\r\n", True),
    (b".starts with a dot\r\n\r\n.\r\n.x\r\n", True),
    (b"a\r\n\r\n\r\n", True),
    ("Subject: ü\r\n\r\nnon-ASCII ☃ body\r\n.ü\r\n".encode(), True),
    (b"S: x\r\n\r\n" + b"y" * 5000 + b"\r\n", True),
    (b"\r\n", True),
    (b"a\nb\r\n", False),  # a bare LF
    (b"a\rb\r\n", False),  # a bare CR
    (b"a\r\r\n", False),
    (b"a\r\n\n", False),
    (b"\n.\r\n", False),
    (b"a\r\nno final line end", False),
    (b"a\r\nends in CR\r", False),
    (b"", False),
    (b"Subject: a\n\nLF only\n.\n", False),
]


@pytest.mark.parametrize("message,ours", EDGES)
def test_the_payload_is_byte_for_byte_what_aiosmtplib_sends(message: bytes, ours: bool):
    got = data_payload(message)
    if ours:
        assert got == aiosmtplib_payload(message)
    else:
        assert got is None  # aiosmtplib's own data() sends it


def test_digest_like_messages_take_our_path_and_match():
    crlf, lf = digest_like(), digest_like(b"\n")
    assert crlf.count(b"\r\n.") == 3 and b"\xc3" in crlf and b"\n" not in crlf.replace(b"\r\n", b"")
    assert max(len(line) for line in crlf.split(b"\r\n")) == 998
    assert data_payload(crlf) == aiosmtplib_payload(crlf)
    assert data_payload(lf) is None


def quick(settings: Settings, port: int, **changes: object) -> Settings:
    return replace(
        settings,
        **{"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout": 2.0, **changes},
    )


async def through_transport(settings: Settings, mails: list[tuple[str, bytes]]) -> list[SendResult]:
    transport = SmtpTransport(settings)
    await transport.open()
    try:
        return [await transport.send(SENDER, rcpt, message) for rcpt, message in mails]
    finally:
        await transport.close()


async def through_aiosmtplib(port: int, mails: list[tuple[str, bytes]]) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=5)
    await client.connect()
    for rcpt, message in mails:
        await client.sendmail("digest@example.org", [rcpt], message)
    await client.quit()


def test_the_server_receives_the_same_bytes_as_through_aiosmtplib(settings: Settings):
    messages = [m for m, _ in EDGES if m and len(m) < 998] + [digest_like(), digest_like(b"\n")]
    handler = FaultyHandler()
    with FaultyServer(handler) as server:
        ours = asyncio.run(
            through_transport(
                quick(settings, server.port),
                [(f"ours{i}@example.net", m) for i, m in enumerate(messages)],
            )
        )
        asyncio.run(
            through_aiosmtplib(
                server.port, [(f"ref{i}@example.net", m) for i, m in enumerate(messages)]
            )
        )
    assert all(r.ok for r in ours), [r.reply for r in ours if not r.ok]
    got = {a.recipient: a.message for a in handler.accepted}
    for i in range(len(messages)):
        assert got[f"ours{i}@example.net"] == got[f"ref{i}@example.net"], messages[i][:60]


# (script, reply): what the server does to the first attempt of one address.
FAULTS = [
    ("data_command", "451 4.3.0 Try again later"),
    ("data_command", "554 5.7.1 No DATA for you"),
    ("data_command", "421 4.3.2 Closing"),
    ("data_command", DROP),
    ("data", "451 4.3.0 Try again later"),
    ("data", "554 5.6.0 Message content rejected"),
    ("data", "421 4.3.2 Closing"),
    ("data", DROP),
]


@pytest.mark.parametrize("script,reply", FAULTS)
def test_faults_at_data_end_as_they_did_through_aiosmtplib(settings: Settings, script, reply):
    """The same fault, once with a CRLF message (our DATA) and once with an LF one
    (aiosmtplib's): the same result, and the connection carries the next message."""
    results = {}
    for kind, message in (("crlf", digest_like()), ("lf", digest_like(b"\n"))):
        victim, other = f"victim-{kind}@example.net", f"other-{kind}@example.net"
        handler = FaultyHandler(**{script: {victim: [reply]}})
        with FaultyServer(handler) as server:
            first, after = asyncio.run(
                through_transport(
                    quick(settings, server.port, smtp_pool_size=1),
                    [(victim, message), (other, message)],
                )
            )
        assert after.ok
        assert [a.recipient for a in handler.accepted] == [other]
        results[kind] = first
    assert results["crlf"] == results["lf"]
    first = results["crlf"]
    assert not first.ok
    if reply == DROP:
        assert first.reply.startswith("data: SMTPServerDisconnected") and not first.permanent
    else:
        assert first.reply == reply and first.permanent == reply.startswith("5")


def test_a_server_that_stalls_after_the_data_times_out_as_before(settings: Settings):
    results = {}
    for kind, message in (("crlf", digest_like()), ("lf", digest_like(b"\n"))):
        handler = FaultyHandler(delay=1.5)
        with FaultyServer(handler) as server:
            (results[kind],) = asyncio.run(
                through_transport(
                    quick(settings, server.port, smtp_timeout=0.3),
                    [(f"slow-{kind}@example.net", message)],
                )
            )
    assert results["crlf"] == results["lf"]
    assert not results["crlf"].ok and results["crlf"].reply.startswith("data: timeout")
