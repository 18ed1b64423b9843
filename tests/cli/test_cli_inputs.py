"""Bad input from the command line: a clear error and exit 2, never a traceback, and
nothing written."""

from __future__ import annotations

import json

import pytest
import typer
from conftest import clean_exit, strict_json

from digest import cli as cli_module
from digest import store
from digest.cli import app
from digest.config import Settings
from digest.errors import ConfigError


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


def test_min_score_must_be_a_finite_non_negative_number(cli):
    # inf was stored and `subscribers --json` then printed `Infinity`: not JSON.
    res = cli("subscribe", "ada@example.org", "--keywords", "diffusion", "--min-score=nan")
    clean_exit(res, 2)
    assert "--min-score" in res.stderr
    clean_exit(cli("subscribe", "ada@example.org", "--keywords", "diffusion"), 0)
    clean_exit(cli("set", "ada@example.org", "--min-score=inf"), 2)
    clean_exit(cli("set", "ada@example.org", "--min-score=-1"), 2)
    clean_exit(cli("set", "ada@example.org", "--min-score=0.5"), 0)
    rows = strict_json(cli("subscribers", "--json").stdout)
    assert [r["min_score"] for r in rows] == [0.5]


def test_listings_show_markup_literally_and_print_one_strict_json_array(cli):
    # `[/red]` in a profile made rich raise MarkupError while drawing the table.
    clean_exit(cli("subscribe", "ada@example.org", "--keywords", "[/red] language"), 0)
    res = cli("subscribers", extra_env={"COLUMNS": "200"})
    clean_exit(res, 0)
    assert "[/red] language" in res.stdout
    # A huge --limit overflowed SQLite's integer and crashed with a traceback.
    clean_exit(cli("papers", "--limit", "99999999999999999999999"), 2)
    for args in (
        ["fetch", "--json"],
        ["papers", "--json", "--since", "2000-01-01", "--limit", "3"],
        ["subscribers", "--json"],
        ["check-query", "language", "--json", "--since", "2000-01-01"],
    ):
        res = cli(*args)
        clean_exit(res, 0)
        data = strict_json(res.stdout)
        assert isinstance(data, list) and data, args


def test_a_database_that_cannot_be_opened_is_one_line_naming_the_key(cli):
    res = cli("init", extra_env={"DIGEST_DATABASE_URL": "sqlite:////proc/no-such-dir/d.db"})
    clean_exit(res, 2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: DIGEST_DATABASE_URL: ")


@pytest.mark.parametrize(
    "url", ["sqlite:////etc/hostname", "nosuchdb://x/y", "mysql://u:pw@127.0.0.1:1/d"]
)
def test_a_database_url_that_cannot_be_used_is_a_config_error(url):
    # Not a database, an unknown dialect, a driver not installed.
    with pytest.raises(ConfigError, match="^DIGEST_DATABASE_URL: "):
        cli_module._engine(Settings(database_url=url))


def test_an_unreachable_database_server_exits_1_without_showing_the_password(cli):
    # 1, not 2: a server that is down may come back, so cron and systemd retry.
    url = "postgresql+psycopg://digest:s3cret-pw@127.0.0.1:1/digest"
    res = cli("papers", extra_env={"DIGEST_DATABASE_URL": url})
    clean_exit(res, 1)
    assert "DIGEST_DATABASE_URL" in res.stderr and "127.0.0.1" in res.stderr
    assert "s3cret-pw" not in res.stderr


def test_shown_url_masks_only_the_password():
    assert store.shown_url("postgresql+psycopg://u:pw@db/x") == "postgresql+psycopg://u:***@db/x"
    assert store.shown_url("sqlite:///x[1].db") == "sqlite:///x[1].db"


def test_a_folder_the_system_refuses_is_one_line_not_a_traceback(cli):
    clean_exit(cli("subscribe", "ada@example.org", "--keywords", "language"), 0)
    env = {"DIGEST_TRANSPORT": "file", "DIGEST_OUTBOX_DIR": "/proc/no-such-dir/outbox"}
    res = cli("run", "--now", extra_env=env)
    assert res.code in (1, 2) and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "/proc/no-such-dir" in res.stderr


def test_subscribe_and_set_warn_about_a_lower_case_operator(cli):
    """As check-query does: the profile is stored as typed, with a warning."""
    res = cli("subscribe", "ada@example.org", "--keywords", "diffusion and robots")
    assert res.code == 0, res.stderr
    assert "warning: 'and' is read as a word; write AND" in res.stderr
    res = cli("set", "ada@example.org", "--keywords", "diffusion or robots")
    assert res.code == 0, res.stderr
    assert "warning: 'or' is read as a word; write OR" in res.stderr
    quiet = cli("set", "ada@example.org", "--keywords", '"salt and pepper" NOT survey')
    assert quiet.code == 0 and "warning" not in quiet.stderr
    listed = json.loads(cli("subscribers", "--json").stdout)
    assert listed[0]["keywords"] == '"salt and pepper" NOT survey'


def test_control_characters_never_reach_the_operators_terminal(cli, env):
    """A profile with an ESC sequence is refused (any entry point: here the CLI); one
    stored earlier, or text from a feed, is shown escaped in the listings."""
    res = cli("subscribe", "eve@example.org", "--keywords", "x\x1b[2J\x1b[31mEVIL")
    assert res.code == 2 and "control character (U+001B)" in res.stderr
    assert "\x1b" not in res.stderr
    # a line break is whitespace to the query language, as a textarea sends it
    ok = cli("subscribe", "ada@example.org", "--keywords", "diffusion,\r\nrobots")
    assert ok.code == 0, ok.stderr
    # a query error with a line break in it: no raw control character echoed back
    bad = cli("check-query", "x\r\nBcc: y")
    assert bad.code == 2 and "\r" not in bad.stderr and "unknown field" in bad.stderr
    # stored before this check (or by another way in): escaped when listed
    engine = store.make_engine(env["DIGEST_DATABASE_URL"])
    store.update_subscriber(engine, "ada@example.org", keywords="x\x1b[2J\x1b]0;pwned\x07")
    engine.dispose()
    listed = cli("subscribers")
    assert listed.code == 0 and "\x1b" not in listed.stdout and "\x07" not in listed.stdout
    assert "\\x1b[2J" in listed.stdout
