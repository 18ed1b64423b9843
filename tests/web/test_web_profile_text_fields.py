"""The profile's text fields on the web forms are checked whole: a too-long interest
is reported with the length that was sent (it was cut to 4,001 characters first, so
every one said "got 4001"), a textarea's CRLF newlines do not cost the end of an
interest that fits once folded, and a control character inside a liked id is refused
on the form and in the API alike."""

from __future__ import annotations

import re

import httpx
from web_served import post_form, served

from digest import store, subscriptions
from digest.tokens import make_token


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="error" id="{name}-error" role="alert">([^<]*)</p>', page)
    assert found, page[:300]
    return found.group(1)


def test_interest_length_and_liked_ids_on_the_manage_form(settings, engine):
    ada = subscriptions.subscribe(engine, settings, "ada@example.org", "reward")
    manage = "/manage/" + make_token(settings.secret_key, "manage", ["ada@example.org", ada.id])
    with served(settings, engine) as url, httpx.Client(base_url=url) as person:
        for typed in (5000, 9000):
            res = post_form(person, manage, keywords="reward", interest="x" * typed)
            assert res.status_code == 400
            assert field_error(res.text, "interest") == f"at most 4000 characters, got {typed}"

        # 20 lines of 199 characters: sent as 4,018 with CRLFs, under 4,000 folded
        typed = "\r\n".join([("reward models for alignment " * 8)[:199]] * 20)
        assert len(typed) > 4001 and len(" ".join(typed.split())) <= 4000
        res = post_form(person, manage, keywords="reward", interest=typed)
        assert res.status_code == 303, field_error(res.text, "interest")
        stored = store.get_subscriber(engine, "ada@example.org").interest
        assert stored == " ".join(typed.split()) and stored.endswith(typed[-5:])

        for likes in ("arXiv:2401.01234\rX-Evil: 1", "2401.0\x001234"):
            res = post_form(person, manage, keywords="reward", likes=likes)
            assert res.status_code == 400 and "is not an arXiv id" in field_error(res.text, "likes")
        api = httpx.patch(
            f"{url}/api{manage}", json={"likes": ["https://arxiv.org/abs/2401.01234\r\nX: 1"]}
        )
        assert api.status_code == 400 and api.json()["field"] == "likes"
        assert "\\r" in api.json()["error"]  # shown escaped, never as a raw CR
    assert store.get_subscriber(engine, "ada@example.org").likes == []


def test_control_characters_in_keywords_are_refused_on_the_web(settings, engine):
    """A stranger's ESC sequence would reach the operator's terminal in `digest
    subscribers`: refused with the field named, nothing stored."""
    with served(settings, engine) as url:
        api = httpx.post(
            f"{url}/api/subscriptions",
            json={"email": "eve@example.org", "keywords": "x\u001b[2J\u001b[31mEVIL"},
        )
        assert api.status_code == 400 and api.json()["field"] == "keywords"
        assert "control character (U+001B)" in api.json()["error"]
        with httpx.Client(base_url=url) as person:
            res = post_form(person, "/subscribe", email="eve@example.org", keywords="a\x00b")
        assert res.status_code == 400
        assert "control character (U+0000)" in field_error(res.text, "keywords")
    assert store.get_subscriber(engine, "eve@example.org") is None
