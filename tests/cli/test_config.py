"""Settings: every key documented with its true default, and every bad value one
clear line naming the key."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import REPO, clean_exit

from digest.config import _KEYS, ENV_KEYS, Settings, load_settings
from digest.errors import ConfigError
from digest.startup import load_checked_settings

EXAMPLE = REPO / "config.example.env"


def documented() -> dict[str, str]:
    """`KEY=value` lines of config.example.env (comments and blanks skipped)."""
    out: dict[str, str] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(DIGEST_[A-Z0-9_]+)=(.*)$", line)
        if m:
            assert m[1] not in out, f"{m[1]} is documented twice"
            out[m[1]] = m[2]
    return out


def test_every_key_is_documented_and_every_documented_key_exists():
    doc = documented()
    assert sorted(set(ENV_KEYS) - set(doc)) == [], "keys missing from config.example.env"
    assert sorted(set(doc) - set(ENV_KEYS)) == [], "config.example.env documents unknown keys"


def test_every_setting_has_a_key():
    assert {f.name for f in fields(Settings)} == {field for field, _ in _KEYS.values()}


def test_documented_values_are_the_defaults():
    # Loading the example file must give exactly the built-in defaults: the file says
    # "every key is shown with its default".
    assert load_settings(environ={}, env_file=EXAMPLE) == Settings()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DIGEST_BASE_URL", "http://exa mple.org"),
        ("DIGEST_BASE_URL", "javascript:alert(1)"),
        ("DIGEST_HUGGINGFACE_URL", "https://huggingface.co\r\nX-Evil: 1"),
        ("DIGEST_FROM", "a@example.org, b@example.org"),
        ("DIGEST_FROM", "Digest <digest@example.org>\r\nBcc: x@example.org"),
        ("DIGEST_FROM", "@"),
        ("DIGEST_CONTACT_EMAIL", "nobody"),
        ("DIGEST_SMTP_HOST", "mail.example.org\r\nRCPT TO:<x@y.z>"),
        ("DIGEST_SMTP_HOST", "h" * 300),
        ("DIGEST_HTTP_HOST", "0.0.0.0 evil"),
        ("DIGEST_SUBJECT_TEMPLATE", "{nope} papers"),
        ("DIGEST_SUBJECT_TEMPLATE", "{count} {"),
        ("DIGEST_SUBJECT_TEMPLATE", "{0}"),
        ("DIGEST_SOURCES", "nope"),
        ("DIGEST_SOURCES", "sample,bogus"),
        ("DIGEST_SOURCES", "arxiv:"),
        ("DIGEST_SOURCES", " , "),
        ("DIGEST_SOURCES", "file:/" + "a" * 600),
        ("DIGEST_TRANSPORT", "pigeon"),
        ("DIGEST_DATABASE_URL", "sqlite:///a\nb.db"),
        ("DIGEST_SMTP_PORT", "99999999999999999999"),
        ("DIGEST_ARXIV_MIN_INTERVAL", "nan"),
        ("DIGEST_TIMEZONE", "../../etc/passwd"),
        ("DIGEST_TRUSTED_PROXIES", "garbage"),
        ("DIGEST_TRUSTED_PROXIES", "10.0.0.1, proxy.internal"),
        ("DIGEST_TRUSTED_PROXIES", "10.0.0.0/33"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(key: str, value: str):
    # The entry points' loader: DIGEST_SOURCES and DIGEST_TRANSPORT are checked against
    # the stages' registries, which `digest.config` (a core module) does not import.
    with pytest.raises(ConfigError) as caught:
        load_checked_settings(environ={key: value}, env_file=None)
    message = str(caught.value)
    assert message.startswith(f"{key}: ")
    assert "\n" not in message and "\r" not in message and len(message) < 600


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DIGEST_BASE_URL", "https://digest.example.org/sub/path"),
        ("DIGEST_BASE_URL", "http://127.0.0.1:8000/"),
        ("DIGEST_FROM", '"Digest, Inc." <digest@example.org>'),
        ("DIGEST_FROM", "Paper Digest <digest@localhost>"),
        ("DIGEST_SMTP_HOST", "::1"),
        ("DIGEST_SUBJECT_TEMPLATE", "[digest] {date}: {count} ({topics})"),
        ("DIGEST_SOURCES", "huggingface, arxiv:cs.CL+cs.LG, feed:https://x.org/a?b=1,2, sample"),
        ("DIGEST_DATABASE_URL", "sqlite:////srv/My Digest/digest.db"),
        ("DIGEST_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16,::1"),
        ("DIGEST_TRUSTED_PROXIES", "*"),
        ("DIGEST_TRUSTED_PROXIES", ""),
    ],
)
def test_good_values_still_pass(key: str, value: str):
    load_checked_settings(environ={key: value}, env_file=None)


def test_dotenv_that_is_not_utf8_is_a_config_error(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"\xff\xfe\x00DIGEST_SMTP_PORT=25\n")
    with pytest.raises(ConfigError, match=r"\.env"):
        load_settings(environ={}, env_file=env_file)


def test_a_dotenv_file_that_is_not_text_is_a_config_error(cli, tmp_path: Path):
    (tmp_path / ".env").write_bytes(b"\xff\xfe\x00garbage\n")
    res = cli("papers")
    clean_exit(res, 2)
    assert ".env" in res.stderr


@pytest.mark.parametrize(
    "bad_line", ["this is not valid", 'DIGEST_FROM="Digest <digest@example.org>', "=25"]
)
def test_a_dotenv_line_that_does_not_parse_is_one_error_naming_file_and_line(
    cli, tmp_path: Path, bad_line: str
):
    # python-dotenv logs a warning and skips the line: the setting would silently be
    # its default (and the warning came twice, once per read of the file).
    (tmp_path / ".env").write_text(f"# settings\nDIGEST_SMTP_PORT=25\n{bad_line}\n")
    res = cli("papers")
    clean_exit(res, 2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert ".env, line 3: cannot read" in lines[0]
    assert "python-dotenv" not in res.stderr
