"""Every fixture message through `digest inbound`: in-process (both line endings: a
Postfix pipe hands LF, the wire has CRLF) and as the real command reading stdin. The
right subscriber changes, or nobody does."""

from __future__ import annotations

import json
import tracemalloc
from datetime import timedelta

import pytest
from inbound_people import (
    EXPECTED,
    FIXTURES,
    PEOPLE,
    add_people,
    expected_after,
    run_inbound,
    snapshot,
    with_tokens,
)
from sqlalchemy import update
from sqlmodel import Session

from digest import store
from digest.inbound import handle
from digest.models import InboundEvent, utcnow
from digest.states import InboundKind
from digest.store.inbound import BOUNCE_WINDOW
from digest.tokens import make_mail_token
from tests.fixtures.inbound.research.make_generated import make_huge, nested


@pytest.fixture
def people(engine, settings) -> dict[str, int]:
    return add_people(engine, settings)


@pytest.mark.parametrize("line_end", ["crlf", "lf"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_changes_exactly_whom_it_names(engine, settings, people, name, line_end):
    owner, action = EXPECTED[name]
    data = with_tokens((FIXTURES / name).read_bytes(), settings.secret_key, people[owner or "ada"])
    if line_end == "lf":
        data = data.replace(b"\r\n", b"\n")
    before = snapshot(engine)
    result = handle(engine, settings, data)
    assert (result.action, name) == (action, name), result.reason
    assert snapshot(engine) == expected_after(before, owner, action)
    events = store.list_inbound_events(engine, 5)
    assert [e.kind for e in events] == [action]
    assert "\n" not in events[0].detail and "\r" not in events[0].detail


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_without_real_tokens_nobody_changes(engine, settings, people, name):
    """The fixtures as written (literal `<TOKEN>`), and with tokens signed by another
    secret (a forger's): nobody is touched, whatever the message says."""
    raw = (FIXTURES / name).read_bytes()
    forged = with_tokens(raw, "not-our-secret", people["ada"])
    for data in (raw, forged):
        before = snapshot(engine)
        result = handle(engine, settings, data)
        assert snapshot(engine) == before, (name, result)
        assert result.changed is False


def test_a_bounce_token_never_unsubscribes_and_an_unsubscribe_token_never_bounces(
    engine, settings, people
):
    bounce = make_mail_token(settings.secret_key, "bounce", people["ada"])
    unsub = make_mail_token(settings.secret_key, "unsubscribe-mail", people["bob"])
    mail = (
        f"From: ada@example.org\nTo: digest+unsubscribe-{bounce}@papers.example\n"
        f"Subject: unsubscribe {bounce}\n\nunsubscribe\n"
    ).encode()
    assert handle(engine, settings, mail).action == "ignored"
    dsn = (FIXTURES / "dsn/vague_verp_only.eml").read_bytes().replace(b"<TOKEN>", unsub.encode())
    assert handle(engine, settings, dsn).action != "bounce"  # bob's own token: he asked to stop
    assert all(bounces == 0 for _, bounces, _ in snapshot(engine).values())
    assert snapshot(engine)[PEOPLE["ada"]] == ("active", 0, 0)


def test_bounces_suspend_at_max_bounces(engine, settings, people):
    data = with_tokens(
        (FIXTURES / "dsn/postfix_failed_5.1.1.eml").read_bytes(), settings.secret_key, people["ada"]
    )
    for _ in range(settings.max_bounces):  # a day apart: see test_inbound_replayed_bounce
        handle(engine, settings, data)
        earlier = utcnow() - BOUNCE_WINDOW - timedelta(minutes=1)
        with Session(engine) as session:
            session.exec(update(InboundEvent).values(created_at=earlier))
            session.commit()
    assert snapshot(engine)[PEOPLE["ada"]] == ("suspended", settings.max_bounces, 0)
    assert store.inbound_counts(engine)["bounce"] == settings.max_bounces


def test_a_deleted_subscribers_token_changes_nothing(engine, settings, people):
    data = with_tokens(
        (FIXTURES / "dsn/postfix_failed_5.1.1.eml").read_bytes(), settings.secret_key, people["ada"]
    )
    store.delete_subscriber(engine, PEOPLE["ada"])
    result = handle(engine, settings, data)
    assert (result.action, result.subscriber, result.changed) == ("bounce", None, False)
    assert PEOPLE["ada"] not in snapshot(engine)


def test_ten_megabytes_are_read_in_bounded_memory_and_still_name_their_subscriber(
    engine, settings, people
):
    """The DSN part comes first: the kept first megabyte still holds it."""
    import io

    from digest.inbound import MAX_MESSAGE_BYTES, read_capped

    huge = with_tokens(make_huge(10 * 1024 * 1024), settings.secret_key, people["ada"])
    tracemalloc.start()
    data, total = read_capped(io.BytesIO(huge))
    result = handle(engine, settings, data, total)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (len(data), total) == (MAX_MESSAGE_BYTES, len(huge))
    assert result.truncated and result.action == "bounce"
    assert peak < 30 * 1024 * 1024  # parsed whole, the message took ~92 MB


def test_nesting_deeper_than_the_parser_can_follow_is_ignored(engine, settings, people):
    for depth in (50, 3000):
        result = handle(engine, settings, nested(depth))
        assert result.action == InboundKind.IGNORED
    assert all(v == ("active", 0, 0) for v in snapshot(engine).values())


@pytest.mark.parametrize(
    "name",
    [
        "dsn/postfix_failed_5.1.1.eml",
        "arf/arf_abuse_headers_only.eml",
        "unsubscribe/gmail_button_token_in_subject.eml",
        "hostile/no_headers.eml",
        "hostile/dsn_hostile_final_recipient.eml",
        "hostile/non_utf8_bytes.eml",
    ],
)
def test_the_command_reads_stdin_as_a_postfix_pipe_delivers_it(env, engine, settings, people, name):
    owner, action = EXPECTED[name]
    data = with_tokens((FIXTURES / name).read_bytes(), settings.secret_key, people[owner or "ada"])
    before = snapshot(engine)
    proc = run_inbound(env, data.replace(b"\r\n", b"\n"), "--sender", "MAILER-DAEMON")
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["action"] == action
    assert snapshot(engine) == expected_after(before, owner, action)


def test_the_command_drains_ten_megabytes_and_exits_0(env, engine, settings, people):
    huge = with_tokens(make_huge(10 * 1024 * 1024), settings.secret_key, people["ada"])
    proc = run_inbound(env, huge)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["truncated"] is True
    assert snapshot(engine)[PEOPLE["ada"]][1] == 1


def test_the_envelope_recipient_argument_names_the_subscriber(env, engine, settings, people):
    """As `${original_recipient}` from the pipe: the message itself names nobody."""
    token = make_mail_token(settings.secret_key, "unsubscribe-mail", people["carol"])
    proc = run_inbound(
        env,
        b"From: carol@example.com\nSubject: stop\n\nplease stop\n",
        "--recipient",
        f"digest+unsubscribe-{token}@papers.example",
    )
    assert proc.returncode == 0, proc.stderr
    assert snapshot(engine)[PEOPLE["carol"]][0] == "unsubscribed"


def test_a_locked_or_missing_database_is_a_temporary_failure(env, tmp_path):
    """Exit 75: the MTA keeps the message and retries; nothing is lost."""
    missing = {**env, "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'nope' / 'x.db'}"}
    proc = run_inbound(missing, b"From: a@b\n\nhi\n")
    assert proc.returncode == 75
    assert b"Traceback" not in proc.stderr
    assert b"retries" in proc.stderr
