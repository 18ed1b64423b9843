"""End to end: digests sent through a real SMTP server with the VERP envelope sender;
the bounce a relay would send for one of them, piped into `digest inbound`, shows in
`digest subscribers --json`; a reply to another's List-Unsubscribe mailto (the exact
address from the received message) unsubscribes at once."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
import threading
from urllib.parse import unquote, urlsplit

from aiosmtpd.controller import Controller

from tests.conftest import free_port


class EnvelopeRecorder:
    """An SMTP server's handler that keeps each message with its envelope."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.received.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 OK"


def relay_bounce(envelope_sender: str, original: bytes, recipient: str) -> bytes:
    """The DSN a relay sends when the recipient's server refused the message for good:
    to the envelope sender, quoting the original headers (RFC 3464, RET=HDRS)."""
    headers = original.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    return (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@relay.papers.example (Mail Delivery System)\r\n"
        f"To: {envelope_sender}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n'
        "\r\n--B1\r\nContent-Type: text/plain\r\n\r\n"
        f"<{recipient}>: host mx.example.org said: 550 5.1.1 User unknown\r\n"
        "\r\n--B1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.papers.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        "\r\n--B1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{headers}\r\n"
        "\r\n--B1--\r\n"
    ).encode()


def _digest(env, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        input=data,
        env=env,
        capture_output=True,
        timeout=120,
    )


def test_a_bounce_and_a_mailed_unsubscribe_come_back_through_digest_inbound(env, tmp_path):
    recorder = EnvelopeRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        env = {
            **env,
            "DIGEST_SMTP_PORT": str(port),
            "DIGEST_FROM": "Paper Digest <digest@papers.example>",
            "DIGEST_BOUNCE_DOMAIN": "papers.example",
        }
        for address in ("ada@example.org", "bob@example.net"):
            done = _digest(env, "subscribe", address, "--keywords", "*", "--send-at", "00:00")
            assert done.returncode == 0, done.stderr
        run = _digest(env, "run", "--now")
        assert run.returncode == 0, run.stderr
    finally:
        controller.stop()
    by_rcpt = {rcpts[0]: (mail_from, data) for mail_from, rcpts, data in recorder.received}
    assert set(by_rcpt) == {"ada@example.org", "bob@example.net"}
    ada_from, ada_data = by_rcpt["ada@example.org"]
    bob_from, bob_data = by_rcpt["bob@example.net"]
    # VERP: each digest has its own signed envelope sender on the bounce domain.
    assert ada_from.startswith("bounces+") and ada_from.endswith("@papers.example")
    assert ada_from != bob_from and len(ada_from.split("@")[0]) <= 64

    dsn = relay_bounce(ada_from, ada_data, "ada@example.org")
    bounced = _digest(env, "inbound", "--json", "--recipient", ada_from, data=dsn)
    assert bounced.returncode == 0, bounced.stderr
    assert json.loads(bounced.stdout)["action"] == "bounce"

    received = email.message_from_bytes(bob_data, policy=email.policy.default)
    mailto = next(
        u.strip().strip("<>")
        for u in str(received["List-Unsubscribe"]).split(",")
        if "mailto:" in u
    )
    parts = urlsplit(mailto)
    subject = unquote(parts.query.partition("subject=")[2])
    reply = (
        f"From: Bob <bob@example.net>\r\nTo: {parts.path}\r\nSubject: {subject}\r\n"
        "Message-ID: <reply-1@example.net>\r\n\r\n\r\n"
    ).encode()
    stopped = _digest(env, "inbound", "--json", data=reply.replace(b"\r\n", b"\n"))
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["action"] == "unsubscribe"

    listed = _digest(env, "subscribers", "--json")
    subscribers = {s["email"]: s for s in json.loads(listed.stdout)}
    assert subscribers["ada@example.org"]["bounces"] == 1
    assert subscribers["ada@example.org"]["status"] == "active"
    assert subscribers["bob@example.net"]["status"] == "unsubscribed"
    assert subscribers["bob@example.net"]["bounces"] == 0
