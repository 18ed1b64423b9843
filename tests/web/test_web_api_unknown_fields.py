"""The JSON API refuses a field it does not know (422 naming it) instead of ignoring
it: `{"max_paper": 5}` or `{"send-at": "06:00"}` used to answer 202 / 200 and store
the defaults, so a client's typo changed nothing and looked like success."""

from __future__ import annotations

import httpx
import pytest
from conftest import settings_with
from web_served import served

from digest import store
from digest.rendering import subscriber_links
from digest.subscriptions import new_subscriber


def test_sign_up_with_a_misspelt_field_is_refused_and_stores_nothing(settings, engine):
    with served(settings, engine) as url, httpx.Client(base_url=url) as client:
        body = {"email": "ada@example.org", "keywords": "diffusion", "send-at": "06:00"}
        res = client.post("/api/subscriptions", json=body)
        assert res.status_code == 422, res.text
        assert "send-at" in res.json()["error"]
        assert res.json()["detail"][0]["loc"] == ["body", "send-at"]
        assert store.get_subscriber(engine, "ada@example.org") is None
        res = client.post("/api/subscriptions", json={**body, "send_at": "06:00"})
        assert res.status_code == 422  # still has the unknown one
        del body["send-at"]
        assert client.post("/api/subscriptions", json=body).status_code == 202


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "", {"max_paper": 5}),
        ("POST", "/ratings", {"paper_id": "2305.18290", "vote": "more", "undo": True}),
    ],
)
def test_manage_api_refuses_unknown_fields_and_changes_nothing(
    settings, engine, method, path, body
):
    sub = store.add_subscriber(engine, new_subscriber(settings, "ada@example.org", "diffusion"))
    with served(settings, engine) as url, httpx.Client(base_url=url) as client:
        links = subscriber_links(settings_with(settings, base_url=url), sub.email, None, sub.id)
        token = links["manage"].rsplit("/", 1)[1]
        res = client.request(method, f"/api/manage/{token}{path}", json=body)
        assert res.status_code == 422, res.text
        unknown = next(k for k in body if k not in ("paper_id", "vote"))
        assert unknown in res.json()["error"]
    stored = store.get_subscriber(engine, "ada@example.org")
    assert stored.max_papers == settings.max_papers
    assert store.list_ratings(engine, sub.id) == []


def test_preview_refuses_an_unknown_field(settings, engine):
    with served(settings, engine) as url, httpx.Client(base_url=url) as client:
        res = client.post("/api/preview", json={"keyword": "diffusion"})
        assert res.status_code == 422, res.text
        assert "keyword" in res.json()["error"]


def test_an_unknown_field_named_with_a_lone_surrogate_is_answered_422_not_500(settings, engine):
    with served(settings, engine) as url, httpx.Client(base_url=url) as client:
        raw = b'{"email": "ada@example.org", "keywords": "x", "\\ud800<b>": 1}'
        res = client.post(
            "/api/subscriptions", content=raw, headers={"Content-Type": "application/json"}
        )
        assert res.status_code == 422, res.text
        assert res.headers["content-type"].startswith("application/json")
        assert res.json()["error"]  # pydantic refuses the lone surrogate first


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "../../../etc/localtime"}, "timezone"),
        ({"likes": ["../../etc/passwd"]}, "likes"),
        ({"send_at": "7h30"}, "send_at"),
        ({"interest": "x" * 3999 + " "}, None),
    ],
)
def test_api_errors_name_the_json_field_not_a_command_line_flag(settings, engine, body, field):
    """The API answered `"--like: '../../etc/passwd' is not an arXiv id"`: the CLI's
    flag, which names nothing a JSON client sent."""
    sub = store.add_subscriber(engine, new_subscriber(settings, "ada@example.org", "diffusion"))
    with served(settings, engine) as url, httpx.Client(base_url=url) as client:
        links = subscriber_links(settings_with(settings, base_url=url), sub.email, None, sub.id)
        token = links["manage"].rsplit("/", 1)[1]
        res = client.patch(f"/api/manage/{token}", json=body)
    if field is None:  # a long interest is fine
        assert res.status_code == 200, res.text
        return
    assert res.status_code == 400, res.text
    assert res.json()["field"] == field
    assert not res.json()["error"].startswith("--"), res.json()
