"""Issue 16 item 9: an address whose local part is over 64 octets (RFC 5321) or which
is over 254 characters is refused at sign-up, and a send time takes ASCII digits only
(`\\d` matches Arabic-Indic ones): through the real CLI and the web API."""

from __future__ import annotations

import json
import warnings

import pytest
from conftest import settings_with

from digest import store
from digest.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LONG_LOCAL = "a" * 65 + "@example.org"
LONGEST_LOCAL = "a" * 64 + "@example.org"
LONG_ADDRESS = "a" * 60 + "@" + ".".join(["b" * 60] * 3) + ".example.org"  # 255 characters
ARABIC_INDIC = "0\u0667:3\u0660"  # 07:30 with Arabic-Indic digits where `\d` took them


def one_line_error(res, *words: str) -> None:
    assert res.code == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_cli_refuses_a_long_local_part_and_a_long_address(cli):
    assert len(LONG_ADDRESS) == 255
    one_line_error(cli("subscribe", LONG_LOCAL, "--keywords", "diffusion"), "at most 64")
    one_line_error(cli("subscribe", LONG_ADDRESS, "--keywords", "diffusion"), "too long")
    assert cli("subscribe", LONGEST_LOCAL, "--keywords", "diffusion").code == 0
    rows = json.loads(cli("subscribers", "--json").stdout)
    assert [r["email"] for r in rows] == [LONGEST_LOCAL]


def test_cli_refuses_a_send_time_in_other_digits(cli):
    res = cli("subscribe", "ada@example.org", "--keywords", "diffusion", "--send-at", ARABIC_INDIC)
    one_line_error(res, "--send-at", "HH:MM")
    assert json.loads(cli("subscribers", "--json").stdout) == []


@pytest.fixture
def api(settings, engine):
    app = create_app(settings_with(settings, signup_limit_per_ip=1000), engine)
    with TestClient(app, base_url="https://digest.example.org") as client:
        yield client


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"email": LONG_LOCAL}, "email", "at most 64"),
        ({"email": LONG_ADDRESS}, "email", "too long"),
        ({"email": "ada@example.org", "send_at": ARABIC_INDIC}, "send_at", "HH:MM"),
    ],
)
def test_web_api_refuses_them(api, engine, fields, field, words):
    answer = api.post("/api/subscriptions", json={"keywords": "diffusion", **fields})
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and words in answer.json()["error"]
    assert store.list_subscribers(engine) == []
