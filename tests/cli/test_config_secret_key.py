"""DIGEST_SECRET_KEY: a short key is refused everywhere; the built-in example key is
only for local trials, and the demo makes its own."""

from __future__ import annotations

import re

import pytest

from digest.config import EXAMPLE_SECRET_KEY, Settings, load_settings
from digest.demo import run_demo
from digest.errors import ConfigError
from digest.tokens import TokenError, read_token


@pytest.mark.parametrize("key", ["x", "hunter2", "a" * 31, "  short-but-padded  "])
def test_a_short_secret_key_is_one_line_naming_the_key(key: str):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"DIGEST_SECRET_KEY": key}, env_file=None)
    message = str(caught.value)
    assert message.startswith("DIGEST_SECRET_KEY: expected at least 32 characters")
    assert "token_urlsafe" in message  # says how to make a good one
    assert repr(key.strip()) not in message  # and never repeats the secret


def test_a_long_key_is_kept_and_an_empty_one_means_the_example():
    long_key = "k" * 32
    assert load_settings(environ={"DIGEST_SECRET_KEY": long_key}, env_file=None).secret_key == (
        long_key
    )
    for unset in ("", EXAMPLE_SECRET_KEY):
        loaded = load_settings(environ={"DIGEST_SECRET_KEY": unset}, env_file=None)
        assert loaded.secret_key == EXAMPLE_SECRET_KEY == Settings().secret_key


@pytest.mark.parametrize("command", [["subscribers"], ["run", "--no-fetch"], ["web"]])
def test_commands_stop_on_a_short_key_with_exit_2(cli, command: list[str]):
    answer = cli(*command, extra_env={"DIGEST_SECRET_KEY": "x"})
    assert answer.code == 2
    assert len(answer.stderr.strip().splitlines()) == 1
    assert "DIGEST_SECRET_KEY: expected at least 32 characters" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_run_and_worker_refuse_the_example_key_when_links_go_to_a_public_site(cli):
    # The `env` fixture's base URL is https://digest.example.org: mails would carry
    # links anyone could forge.
    answer = cli("run", "--no-fetch", extra_env={"DIGEST_SECRET_KEY": ""})
    assert answer.code == 2
    assert "DIGEST_SECRET_KEY is not set" in answer.stderr
    worker = cli("worker", "--interval", "60", extra_env={"DIGEST_SECRET_KEY": ""})
    assert worker.code == 2 and "DIGEST_SECRET_KEY is not set" in worker.stderr
    local = cli(
        "run",
        "--no-fetch",
        extra_env={"DIGEST_SECRET_KEY": "", "DIGEST_BASE_URL": "http://127.0.0.1:8000"},
    )
    assert local.code == 0, local.stderr


def test_the_demo_signs_with_a_key_of_its_own(tmp_path):
    # Its links must not verify under the published example key.
    summary = run_demo(tmp_path / "outbox")
    assert summary.html_path is not None
    html = summary.html_path.read_text(encoding="utf-8")
    tokens = re.findall(r"/manage/([A-Za-z0-9_.\-]+)", html)
    assert tokens, "the demo digest has a manage link"
    with pytest.raises(TokenError):
        read_token(EXAMPLE_SECRET_KEY, "manage", tokens[0])
