"""Issue 14: the JSON API for a subscriber's ratings (list, rate, undo one, clear),
authenticated by the manage link's token like the rest of `/api/manage/{token}`,
against the real app on loopback; and what the ratings do to the next ranking is
the feedback links' (tests/test_ratings_ranking.py)."""

from __future__ import annotations

import httpx
import pytest
from web_served import served

from digest import store, subscriptions
from digest.records import PaperRecord
from digest.tokens import make_token

PAPERS = [
    PaperRecord(id="2401.00001", title="Reward models for preference optimisation", source="t"),
    PaperRecord(id="2401.00002", title="Jailbreaking chat assistants <b>fast</b>", source="t"),
    PaperRecord(id="hep-th/9901001", title="An old-style id", source="t"),
]


@pytest.fixture
def api(settings, engine):
    store.merge_papers(engine, PAPERS)
    ada = subscriptions.subscribe(engine, settings, "ada@example.org", "reward")
    bob = subscriptions.subscribe(engine, settings, "bob@example.org", "jailbreak")
    tokens = {
        sub.email: make_token(settings.secret_key, "manage", [sub.email, sub.id])
        for sub in (ada, bob)
    }
    with served(settings, engine) as url, httpx.Client(base_url=url + "/api") as client:
        yield client, tokens["ada@example.org"], tokens["bob@example.org"], (ada, bob)


def votes(engine, sub) -> dict[str, int]:
    return {r.paper_id: r.vote for r in store.list_ratings(engine, sub.id)}


def test_list_rate_undo_and_clear(api, engine):
    client, ada_token, _, (ada, bob) = api
    base = f"/manage/{ada_token}/ratings"
    assert client.get(base).json() == []

    got = client.post(base, json={"paper_id": "2401.00001", "vote": "more"})
    assert got.status_code == 200, got.text
    assert got.json()["vote"] == "more" and got.json()["title"].startswith("Reward models")
    # a repeat changes nothing; the other vote replaces it
    assert client.post(base, json={"paper_id": "2401.00001", "vote": "more"}).status_code == 200
    client.post(base, json={"paper_id": "2401.00002", "vote": "more"})
    assert client.post(base, json={"paper_id": "2401.00002", "vote": "less"}).status_code == 200
    client.post(base, json={"paper_id": "hep-th/9901001", "vote": "less"})
    assert votes(engine, ada) == {"2401.00001": 1, "2401.00002": -1, "hep-th/9901001": -1}

    listed = client.get(base).json()
    assert [r["paper_id"] for r in listed] == ["hep-th/9901001", "2401.00002", "2401.00001"]
    assert listed[1] == {**listed[1], "vote": "less", "title": PAPERS[1].title}

    assert client.delete(base + "/hep-th/9901001").json() == {"cleared": 1}
    assert client.delete(base + "/hep-th/9901001").json() == {"cleared": 0}
    assert votes(engine, ada) == {"2401.00001": 1, "2401.00002": -1}
    assert votes(engine, bob) == {}
    assert client.delete(base).json() == {"cleared": 2}
    assert client.get(base).json() == []


def test_bad_input_and_other_links_record_nothing(api, settings, engine):
    client, ada_token, bob_token, (ada, bob) = api
    base = f"/manage/{ada_token}/ratings"
    client.post(base, json={"paper_id": "2401.00001", "vote": "more"})

    unknown = client.post(base, json={"paper_id": "2401.99999", "vote": "more"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "paper_id"
    for body in (
        {"paper_id": "2401.00002", "vote": "up"},
        {"paper_id": "", "vote": "more"},
        {"paper_id": "x" * 201, "vote": "more"},
        {"paper_id": "2401.00002"},
        {"paper_id": ["2401.00002"], "vote": "more"},
    ):
        assert client.post(base, json=body).status_code == 422, body
    hostile = client.post(base, json={"paper_id": "2401.00002\r\nX: 1", "vote": "less"})
    assert hostile.status_code == 404
    assert votes(engine, ada) == {"2401.00001": 1}

    # forged, another purpose's, or a deleted subscriber's token
    forged = ada_token[:-4] + ("AAAA" if not ada_token.endswith("AAAA") else "BBBB")
    unsubscribe = make_token(settings.secret_key, "unsubscribe", ["ada@example.org", ada.id])
    for token in (forged, unsubscribe, "short"):
        res = client.get(f"/manage/{token}/ratings")
        assert res.status_code == 400 and "error" in res.json()
        assert client.delete(f"/manage/{token}/ratings").status_code == 400
    # Bob's token reaches Bob's ratings only
    assert client.get(f"/manage/{bob_token}/ratings").json() == []
    assert client.delete(f"/manage/{bob_token}/ratings").json() == {"cleared": 0}
    assert votes(engine, ada) == {"2401.00001": 1}
    store.delete_subscriber(engine, "bob@example.org")
    assert client.get(f"/manage/{bob_token}/ratings").status_code == 410


def test_the_routes_are_in_the_openapi_document(api):
    client = api[0]
    paths = httpx.get(
        str(client.base_url).rstrip("/").removesuffix("/api") + "/openapi.json"
    ).json()["paths"]
    assert set(paths["/api/manage/{token}/ratings"]) == {"get", "post", "delete"}
    assert set(paths["/api/manage/{token}/ratings/{paper_id}"]) == {"delete"}
