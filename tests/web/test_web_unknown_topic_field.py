"""An unknown topic is an error of the `topics` field, not of `keywords`: the JSON
API said `"field": "keywords"`, so a client highlighted the wrong input, and the
sign-up form showed it under the keywords box. A real server on loopback."""

from __future__ import annotations

import httpx
from conftest import settings_with
from web_served import csrf_token, served

from digest import store
from digest.rendering import subscriber_links
from digest.subscriptions import new_subscriber

NOPE = "no-such-topic<b>"


def test_the_api_names_the_topics_field_for_an_unknown_topic(settings, engine):
    sub = store.add_subscriber(engine, new_subscriber(settings, "bob@example.org", "diffusion"))
    with served(settings, engine) as url, httpx.Client(base_url=url) as client:
        body = {"email": "ada@example.org", "keywords": "diffusion", "topics": [NOPE]}
        res = client.post("/api/subscriptions", json=body)
        assert res.status_code == 400, res.text
        assert res.json()["field"] == "topics"
        assert res.json()["error"] == f"unknown topic {NOPE!r}"
        assert store.get_subscriber(engine, "ada@example.org") is None

        links = subscriber_links(settings_with(settings, base_url=url), sub.email, None, sub.id)
        token = links["manage"].rsplit("/", 1)[1]
        res = client.patch(f"/api/manage/{token}", json={"topics": ["speech", NOPE]})
        assert res.status_code == 400 and res.json()["field"] == "topics", res.text
        assert store.get_subscriber(engine, "bob@example.org").keywords == "diffusion"

        # A profile's own `topic:` term stays a keywords error, with its position.
        res = client.patch(f"/api/manage/{token}", json={"keywords": "topic:nope"})
        assert res.status_code == 400 and res.json()["field"] == "keywords", res.text


def test_the_form_shows_an_unknown_topic_beside_the_topics(settings, engine):
    with served(settings, engine) as url, httpx.Client(base_url=url) as client:
        data = {
            "csrf_token": csrf_token(client),
            "email": "ada@example.org",
            "keywords": "diffusion",
            "topics": NOPE,
            "timezone": "Europe/Berlin",
            "send_at": "07:30",
            "frequency": "daily",
            "max_papers": "10",
        }
        page = client.post("/subscribe", data=data)
        assert page.status_code == 400, page.text[:300]
        escaped = "unknown topic &#39;no-such-topic&lt;b&gt;&#39;"
        assert f'id="topics-error" role="alert">{escaped}</p>' in page.text, page.text
        assert 'id="keywords-error" role="alert" hidden></p>' in page.text
        assert store.get_subscriber(engine, "ada@example.org") is None
