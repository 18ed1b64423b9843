"""The sign-up and confirmed pages say what this installation really does: the
sources it is configured with, when the first digest goes, the time zones people
use today (old aliases still accepted), and a "did you mean" for a zone typo."""

from __future__ import annotations

import re
import warnings

import pytest
from conftest import settings_with

from digest.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "https://digest.example.org"


@pytest.fixture
def make_client(settings, engine):
    clients = []

    def _make(**changes):
        client = TestClient(create_app(settings_with(settings, **changes), engine), base_url=BASE)
        client.__enter__()
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.__exit__(None, None, None)


def lead(page: str) -> str:
    return re.search(r'<p class="lead">(.*?)</p>', page, re.S).group(1)


@pytest.mark.parametrize(
    ("sources", "named", "not_named"),
    [
        ("sample", "from sample papers that match", ["Hugging Face", "arXiv"]),
        ("arxiv:cs.CL", "from arXiv cs.CL that match", ["Hugging Face"]),
        (
            "huggingface,feed:https://connect.biorxiv.org/rss.xml",
            "from Hugging Face Daily Papers and connect.biorxiv.org that match",
            ["arXiv"],
        ),
    ],
)
def test_the_sign_up_page_names_the_configured_sources(make_client, sources, named, not_named):
    text = lead(make_client(sources=sources).get("/").text)
    assert named in " ".join(text.split())
    for other in not_named:
        assert other not in text


def test_the_confirmed_page_says_the_first_digest_goes_at_the_next_round(make_client, smtp_sink):
    client = make_client(send_every_minutes=5, first_digest_days=3)
    answer = client.post(
        "/api/subscriptions",
        json={"email": "ada@example.org", "keywords": "diffusion", "send_at": "07:30"},
    )
    assert answer.status_code == 202, answer.text
    (mail,) = smtp_sink.messages()
    body = mail.get_body(preferencelist=("plain",)).get_content()
    path = re.search(r"https://digest\.example\.org(/confirm/\S+)", body).group(1)
    page = client.get(path)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = client.post(path, data={"csrf_token": token})
    assert done.status_code == 200
    said = " ".join(lead(done.text).split())
    assert "at the next send time" not in said
    assert "goes out with the next sending round, within about 5 minutes" in said
    assert "the papers of the last 3 days that match your profile" in said


def test_the_zone_picker_lists_canonical_zones_and_aliases_still_work(make_client):
    client = make_client()
    page = client.get("/").text
    picker = re.search(r'<select id="timezone".*?</select>', page, re.S).group(0)
    zones = re.findall(r"<option(?: selected)?>([^<]+)</option>", picker)
    assert "Africa/Asmara" in zones and "Europe/Berlin" in zones and "UTC" in zones
    assert "Europe/Amsterdam" in zones  # a merged zone, still its country's name
    for alias in ("Africa/Asmera", "US/Eastern", "Asia/Calcutta", "GB", "Etc/GMT+5"):
        assert alias not in zones
    typed = client.post(
        "/api/subscriptions",
        json={"email": "old@example.org", "keywords": "diffusion", "timezone": "Africa/Asmera"},
    )
    assert typed.status_code == 202, typed.text


def test_a_zone_typo_on_the_web_api_gets_a_did_you_mean(make_client):
    answer = make_client().post(
        "/api/subscriptions",
        json={"email": "ada@example.org", "keywords": "diffusion", "timezone": "Europe/Berln"},
    )
    assert answer.status_code in (400, 422)
    assert "did you mean Europe/Berlin?" in answer.text
