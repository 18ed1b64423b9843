"""Bad input from the command line: a clear error and exit 2, never a traceback, and
nothing written."""

from __future__ import annotations

import json

import pytest
import typer

from digest.cli import app


def assert_clean_error(res, *needles: str) -> None:
    assert res.code == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in res.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DIGEST_SMTP_PORT", "abc"),
        ("DIGEST_SMTP_SECURITY", "tls9"),
        ("DIGEST_SEND_AT", "25:99"),
        ("DIGEST_TIMEZONE", "Mars/Olympus"),
        ("DIGEST_DATABASE_URL", "not a url"),
        ("DIGEST_BASE_URL", "ftp://x"),
    ],
)
def test_bad_setting_is_one_clear_line(cli, key, value):
    res = cli("subscribers", extra_env={key: value})
    assert_clean_error(res, key)
    assert len(res.stderr.strip().splitlines()) == 1


def test_dotenv_file_is_read(cli, tmp_path):
    (tmp_path / ".env").write_text("DIGEST_SMTP_PORT=notaport\n")
    env_without = {"DIGEST_SMTP_PORT": ""}
    res = cli("subscribers", extra_env=env_without)
    # The environment wins over .env, even when empty-but-set values are invalid.
    assert res.code == 2 and "DIGEST_SMTP_PORT" in res.stderr


@pytest.mark.parametrize("address", ["not-an-email", "a@b", "x@example.org\r\nBcc: y@z.org", ""])
def test_bad_email_is_rejected_and_nothing_written(cli, address):
    res = cli("subscribe", address, "--keywords", "diffusion")
    assert_clean_error(res, "invalid email address")
    listed = cli("subscribers", "--json")
    assert json.loads(listed.stdout) == []


def test_empty_profile_is_rejected(cli):
    res = cli("subscribe", "ada@example.org", "--keywords", "  ")
    assert_clean_error(res, "profile")
    assert json.loads(cli("subscribers", "--json").stdout) == []


def test_duplicate_subscriber_is_a_clear_error(cli):
    assert cli("subscribe", "Ada@Example.org", "--keywords", "diffusion").code == 0
    res = cli("subscribe", "ada@example.org", "--keywords", "robots")
    assert_clean_error(res, "already subscribed")
    rows = json.loads(cli("subscribers", "--json").stdout)
    assert [(r["email"], r["keywords"]) for r in rows] == [("ada@example.org", "diffusion")]


def test_bad_date_option(cli):
    assert_clean_error(cli("papers", "--since", "yesterday"), "--since")


def test_unsubscribe_unknown_address(cli):
    assert_clean_error(cli("unsubscribe", "nobody@example.org"), "no subscriber")


def test_subscriber_json_fields_and_unsubscribe(cli):
    assert cli("subscribe", "ada@example.org", "--keywords", '"reinforcement learning"').code == 0
    rows = json.loads(cli("subscribers", "--json").stdout)
    assert {"email", "status", "keywords", "max_papers", "created_at", "confirmed_at"} <= set(
        rows[0]
    )
    assert rows[0]["status"] == "active"
    assert cli("unsubscribe", "ada@example.org").code == 0
    rows = json.loads(cli("subscribers", "--json").stdout)
    assert rows[0]["status"] == "unsubscribed"


def test_every_command_explains_itself(cli):
    top = cli("--help")
    assert top.code == 0
    command = typer.main.get_command(app)
    names = sorted(command.commands)  # type: ignore[attr-defined]
    assert {"init", "subscribe", "unsubscribe", "subscribers", "papers", "fetch", "run"} <= set(
        names
    )
    assert {"preview", "serve", "demo"} <= set(names)
    for name in names:
        assert name in top.stdout
        res = cli(name, "--help")
        assert res.code == 0, (name, res.stderr)
        assert len(res.stdout.strip().splitlines()) > 3
