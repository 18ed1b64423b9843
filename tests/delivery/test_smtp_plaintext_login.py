"""A login over DIGEST_SMTP_SECURITY=none: the password would cross the network
unencrypted (aiosmtplib sends AUTH in the clear when the relay offers it). Refused at
start with one line and exit 2, unless the relay is on loopback or
DIGEST_SMTP_ALLOW_PLAINTEXT_AUTH=true; real `digest` processes, a real aiosmtpd relay."""

from __future__ import annotations

import pytest
from conftest import run_cli
from fault_smtp import FaultyHandler, FaultyServer
from test_delivery import ADDRS, _Authenticator, fast, queue, send

from digest.config import check_smtp_login, load_settings
from digest.delivery.smtp import SmtpTransport
from digest.errors import ConfigError

REMOTE = {
    "DIGEST_SMTP_HOST": "mail.example.org",  # never reached: refused before any connection
    "DIGEST_SMTP_USERNAME": "digest",
    "DIGEST_SMTP_PASSWORD": "s3cret",
    "DIGEST_SMTP_SECURITY": "none",
}


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--no-fetch"],
        ["worker", "--interval", "60"],
        ["retry"],
        ["preview", "--keywords", "model", "--send-to", "me@example.org"],
    ],
)
def test_a_login_in_the_clear_to_a_remote_relay_is_refused_at_start(cli, env, tmp_path, args):
    got = run_cli(args, {**env, **REMOTE}, cwd=tmp_path, timeout=60)
    assert got.code == 2, got.stdout + got.stderr
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: DIGEST_SMTP_USERNAME"), got.stderr
    assert "DIGEST_SMTP_ALLOW_PLAINTEXT_AUTH" in lines[0] and "mail.example.org" in lines[0]
    assert "s3cret" not in got.stderr + got.stdout


def test_the_opt_in_lets_a_run_start(cli, env, tmp_path):
    """Nothing is due, so the run opens no connection (none leaves this machine)."""
    got = run_cli(
        ["run", "--no-fetch"],
        {**env, **REMOTE, "DIGEST_SMTP_ALLOW_PLAINTEXT_AUTH": "true"},
        cwd=tmp_path,
        timeout=60,
    )
    assert got.code == 0, got.stdout + got.stderr
    assert "sent: 0" in got.stdout


def test_other_commands_and_other_transports_are_not_refused(cli, env, tmp_path):
    assert run_cli(["subscribers"], {**env, **REMOTE}, cwd=tmp_path).code == 0
    remote_file = {**env, **REMOTE, "DIGEST_TRANSPORT": "file"}
    remote_file["DIGEST_OUTBOX_DIR"] = str(tmp_path / "out")
    got = run_cli(["run", "--no-fetch"], remote_file, cwd=tmp_path, timeout=60)
    assert got.code == 0, got.stderr


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "[::1]"])
def test_a_relay_on_loopback_may_take_the_login_in_the_clear(settings, host):
    check_smtp_login(load_settings(environ={**REMOTE, "DIGEST_SMTP_HOST": host}, env_file=None))


def test_the_transport_itself_refuses(settings):
    """Whoever makes an SMTP transport (the web's confirmation mails, the scheduler)."""
    with pytest.raises(ConfigError, match="DIGEST_SMTP_SECURITY=none"):
        SmtpTransport(load_settings(environ=REMOTE, env_file=None))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_loopback_relay_gets_the_login_without_tls(engine, settings):
    handler = FaultyHandler()
    queue(engine, ADDRS[:2])
    with FaultyServer(
        handler, auth_required=True, auth_require_tls=False, authenticator=_Authenticator()
    ) as server:
        s = fast(settings, server.port, smtp_username="digest", smtp_password="s3cret")
        assert s.smtp_host == "127.0.0.1" and s.smtp_security == "none"
        report = send(engine, s)
    assert report.sent == 2, report.errors
