"""Found by a hostile review of `digest inbound` (bytes no charset decodes, auto-replies
that look like bounces, reports built to multiply work): each is a real message or a
real command line, and the right subscriber changes, or nobody does."""

from __future__ import annotations

import email
import json
from email.policy import compat32

import pytest
from inbound_people import FIXTURES, PEOPLE, add_people, run_inbound, snapshot

from digest import store
from digest.inbound import handle
from digest.inbound.reading import fields
from digest.tokens import make_mail_token


@pytest.fixture
def people(engine, settings) -> dict[str, int]:
    return add_people(engine, settings)


def test_an_envelope_sender_in_no_charset_is_logged_escaped_not_a_crash(env, engine, people):
    """Postfix hands `${sender}` as raw bytes; Python keeps undecodable ones as lone
    surrogates, which the event row (UTF-8) refused: a traceback and exit 1, and the
    MTA bounced the message to that (forged) sender."""
    proc = run_inbound(env, b"From: x@example.net\n\nhello\n", b"--sender", b"eve\xff@example.net")
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["action"] == "ignored"
    [event] = store.list_inbound_events(engine, 5)
    assert "eve\\udcff@example.net" in event.detail


@pytest.mark.parametrize(
    "body",
    [
        b"I am away until Monday.\n\n> Scaling laws: we train on 512 GPUs for 3 days\n",
        b"I am on leave; for urgent matters call the lab office at 503-555-0100.\n",
    ],
)
def test_an_out_of_office_reply_with_a_number_like_a_smtp_code_is_no_bounce(
    engine, settings, people, body
):
    """Auto-replies go to the Return-Path (RFC 3834): the VERP bounce address. A
    number in one ("512 GPUs" quoted from the digest, a 503- phone number) counted as
    a 5yz refusal, and a subscriber on holiday was suspended after DIGEST_MAX_BOUNCES
    days."""
    token = make_mail_token(settings.secret_key, "bounce", people["ada"])
    reply = (
        b"From: Ada Lovelace <ada@example.org>\n"
        b"To: bounces+" + token.encode() + b"@papers.example\n"
        b"Subject: Automatic reply: Your paper digest\n"
        b"Auto-Submitted: auto-replied\n\n" + body
    )
    for _ in range(settings.max_bounces + 1):
        assert handle(engine, settings, reply).action == "ignored"
    assert snapshot(engine)[PEOPLE["ada"]] == ("active", 0, 0)


def test_a_report_repeating_one_header_is_read_once_per_field():
    """fields() asked for every value of a name once per field of that name: 300
    Return-Path fields became 4,000 values, each searched for tokens (an ARF report of
    1 MB built so cost ~10 s of CPU per message)."""
    returned = b"".join(b"Return-Path: <x%d@example.net>\n" % i for i in range(300))
    report = email.message_from_bytes(
        b"Content-Type: message/rfc822\n\n" + returned + b"\nbody\n", policy=compat32
    )
    found = [value for name, value in fields(report) if name == "return-path"]
    assert len(found) == 20  # header_values' cap, once
    assert len(set(found)) == 20


def test_a_charset_name_with_a_nul_in_it_does_not_hide_a_bounce(engine, settings, people):
    notice = (FIXTURES / "dsn/vague_verp_only.eml").read_bytes()
    notice = notice.replace(b"charset=us-ascii", b'charset="us\0ascii"')
    token = make_mail_token(settings.secret_key, "bounce", people["ada"])
    result = handle(engine, settings, notice.replace(b"<TOKEN>", token.encode()))
    assert result.action == "bounce", result.reason


def test_a_bounce_detector_that_raises_leaves_one_json_line_not_a_traceback(env, people):
    """flufl.bounce's Yale detector raises IndexError on an empty From; the library
    logs the traceback itself, and it reached stderr as multi-line plain text."""
    token = make_mail_token(env["DIGEST_SECRET_KEY"], "bounce", people["ada"])
    message = f"To: bounces+{token}@papers.example\nFrom: \n\nhello\n".encode()
    proc = run_inbound({**env, "DIGEST_LOG_FORMAT": "json"}, message)
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert lines and all(json.loads(line) for line in lines)
    assert any("IndexError" in line for line in lines)
