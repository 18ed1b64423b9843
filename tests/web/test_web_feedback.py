"""Issue 14: "more like this" / "less like this" links, over real HTTP against the app
served by uvicorn, with a real SQLite file. A GET (what a link scanner or a mail
prefetcher does) records nothing; the page's button records once; undo forgets;
forged, altered, another subscriber's and voided links record nothing."""

from __future__ import annotations

import re

import httpx
import pytest
from web_served import post_form, served

from digest import store, subscriptions
from digest.records import PaperRecord
from digest.tokens import make_feedback_token, make_token

PAPERS = [
    PaperRecord(id="2401.00001", title="Reward models for preference optimisation", source="t"),
    PaperRecord(id="2401.00002", title="Jailbreaking chat assistants <b>fast</b>", source="t"),
]


@pytest.fixture
def site(settings, engine):
    store.merge_papers(engine, PAPERS)
    ada = subscriptions.subscribe(engine, settings, "ada@example.org", "reward")
    bob = subscriptions.subscribe(engine, settings, "bob@example.org", "jailbreak")
    with served(settings, engine) as url:
        yield url, ada, bob


def feedback_path(settings, sub, paper_id: str, vote: str = "more") -> str:
    token = make_feedback_token(settings.secret_key, sub.id, sub.token_version, paper_id)
    return f"/feedback/{token}?vote={vote}"


def ratings(engine, sub) -> list[tuple[str, int]]:
    return [(r.paper_id, r.vote) for r in store.list_ratings(engine, sub.id)]


def click(client: httpx.Client, path: str) -> httpx.Response:
    """What a person does: open the link, press the page's button."""
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    action = re.search(r'<form method="post" action="([^"]+)" id="feedback-form"', page.text)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    vote = re.search(r'name="vote" value="([^"]+)"', page.text).group(1)
    return client.post(action.group(1), data={"csrf_token": token, "vote": vote})


def test_a_prefetching_scanner_records_nothing(site, settings, engine):
    url, ada, _ = site
    path = feedback_path(settings, ada, "2401.00001")
    # A scanner: no cookies, GET and HEAD, several times, following whatever it finds.
    for _ in range(3):
        with httpx.Client(base_url=url) as scanner:
            page = scanner.get(path)
            assert page.status_code == 200
            assert "Reward models for preference optimisation" in page.text
            assert "Nothing is recorded until you press the button" in page.text
            assert scanner.head(path).status_code == 200
            for href in re.findall(r'href="([^"]+)"', page.text):
                if href.startswith(("/", url)):
                    scanner.get(href)
    # The page submits nothing by itself: its only script is none at all.
    assert "<script" not in page.text
    assert ratings(engine, ada) == []
    # A POST without the page's CSRF cookie and token (a cross-site form) neither.
    with httpx.Client(base_url=url) as other:
        refused = other.post(path.split("?")[0], data={"vote": "more"})
        assert refused.status_code == 403
        cross = other.post(
            path.split("?")[0],
            data={"vote": "more", "csrf_token": "x"},
            headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        )
        assert cross.status_code == 403
    assert ratings(engine, ada) == []


def test_a_real_click_records_once_and_undo_forgets(site, settings, engine):
    url, ada, bob = site
    with httpx.Client(base_url=url) as person:
        done = click(person, feedback_path(settings, ada, "2401.00001"))
        assert done.status_code == 200
        assert "Noted: more like this" in done.text
        assert ratings(engine, ada) == [("2401.00001", 1)]
        first = store.list_ratings(engine, ada.id)[0].created_at

        # Replays (the same POST again, the link again): still one rating, unchanged.
        token = re.search(r'name="csrf_token" value="([^"]+)"', done.text).group(1)
        action = feedback_path(settings, ada, "2401.00001").split("?")[0]
        for _ in range(3):
            again = person.post(action, data={"csrf_token": token, "vote": "more"})
            assert again.status_code == 200
        click(person, feedback_path(settings, ada, "2401.00001"))
        assert ratings(engine, ada) == [("2401.00001", 1)]
        assert store.list_ratings(engine, ada.id)[0].created_at == first
        # The page says it is rated already.
        assert "rated this paper" in person.get(feedback_path(settings, ada, "2401.00001")).text

        # The other link flips the vote; undo forgets it.
        click(person, feedback_path(settings, ada, "2401.00001", "less"))
        assert ratings(engine, ada) == [("2401.00001", -1)]
        undo = person.post(
            action + "/undo",
            data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', done.text)[1]},
        )
        assert undo.status_code == 200 and "Rating undone" in undo.text
        assert ratings(engine, ada) == []
        # Undo again (a replay, the back button): it says nothing was left to undo.
        again = person.post(
            action + "/undo",
            data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', done.text)[1]},
        )
        assert again.status_code == 200 and "Nothing to undo" in again.text
        assert "Rating undone" not in again.text
    assert ratings(engine, bob) == []


def test_forged_altered_and_foreign_links_record_nothing(site, settings, engine):
    url, ada, bob = site
    good = feedback_path(settings, ada, "2401.00001").split("?")[0].rsplit("/", 1)[1]
    payload, _, signature = good.rpartition(".")
    ada_id, version, day, paper = payload.split(".")
    forged = [
        f"{bob.id}.{version}.{day}.{paper}.{signature}",  # Ada's signature, Bob's id
        f"{payload}.{signature[:-2]}AA",  # a changed signature
        make_feedback_token("another-secret", bob.id, 0, "2401.00001"),  # not our key
        make_token(settings.secret_key, "manage", ["bob@example.org", bob.id]),  # manage token
        make_token(settings.secret_key, "view", f"{bob.id}:2026-03-02"),  # view token
        "x" * 5000,
        "%00%0d%0a<script>",
    ]
    with httpx.Client(base_url=url) as visitor:
        for token in forged:
            page = visitor.get(f"/feedback/{token}?vote=more")
            assert page.status_code in (400, 404), (token, page.status_code)
            posted = post_form(visitor, f"/feedback/{token}", vote="more")
            assert 400 <= posted.status_code < 500, (token, posted.status_code)
            assert "Traceback" not in posted.text
        # A good link with a bad vote: refused.
        assert visitor.get(f"/feedback/{good}?vote=lots").status_code == 400
        assert visitor.get(f"/feedback/{good}").status_code == 400
    assert ratings(engine, ada) == [] and ratings(engine, bob) == []

    # Ada's link clicked in Bob's browser (forwarded mail) rates for Ada, never Bob.
    with httpx.Client(base_url=url) as bobs_browser:
        click(bobs_browser, feedback_path(settings, ada, "2401.00002", "less"))
    assert ratings(engine, ada) == [("2401.00002", -1)] and ratings(engine, bob) == []


def test_a_newer_sign_up_or_a_deleted_row_voids_the_links(site, settings, engine):
    url, ada, bob = site
    old = feedback_path(settings, ada, "2401.00001")
    # token_version bumped (what a later sign-up for the address does)
    store.update_subscriber(engine, ada.email, token_version=ada.token_version + 1)
    with httpx.Client(base_url=url) as person:
        page = person.get(old)
        assert page.status_code == 400 and "Nothing was changed" in page.text
        assert post_form(person, old.split("?")[0], vote="more").status_code == 400
    assert ratings(engine, ada) == []

    bobs = feedback_path(settings, bob, "2401.00002")
    store.delete_subscriber(engine, bob.email)
    with httpx.Client(base_url=url) as person:
        assert person.get(bobs).status_code == 410
    # A paper that is gone: 404, nothing recorded.
    ada = store.get_subscriber(engine, ada.email)
    with httpx.Client(base_url=url) as person:
        assert person.get(feedback_path(settings, ada, "2401.99999")).status_code == 404
    assert ratings(engine, ada) == []


def test_manage_page_lists_ratings_and_clears_them(site, settings, engine):
    url, ada, _ = site
    with httpx.Client(base_url=url, follow_redirects=True) as person:
        click(person, feedback_path(settings, ada, "2401.00001", "more"))
        click(person, feedback_path(settings, ada, "2401.00002", "less"))
        manage = "/manage/" + make_token(settings.secret_key, "manage", ["ada@example.org", ada.id])
        page = person.get(manage)
        assert "Reward models for preference optimisation" in page.text
        # the hostile title is escaped
        assert "Jailbreaking chat assistants &lt;b&gt;fast&lt;/b&gt;" in page.text
        # one route clears one rating, another clears them all
        assert page.text.count('action="' + manage + '/ratings/forget"') == 2
        assert page.text.count('action="' + manage + '/ratings/clear"') == 1
        assert "Clear all 2 ratings" in page.text
        cleared = post_form(person, manage + "/ratings/forget", paper="2401.00002")
        assert cleared.status_code == 200 and "That rating is cleared" in cleared.text
        assert ratings(engine, ada) == [("2401.00001", 1)]
        assert "Clear this rating" in cleared.text  # not "Clear all 1 ratings"
        assert "Clear all 1 ratings" not in cleared.text
        again = post_form(person, manage + "/ratings/forget", paper="2401.00002")
        assert "cleared already" in again.text
        # a one-paper form that lost its paper (or names a hostile one) clears nothing
        for paper in ({}, {"paper": ""}, {"paper": "x" * 201}, {"paper": "2401.00001\r\n"}):
            res = post_form(person, manage + "/ratings/forget", **paper)
            assert res.status_code in (200, 400) and "Traceback" not in res.text
            assert ratings(engine, ada) == [("2401.00001", 1)]
        # the old shared route is gone: it cannot clear everything by accident
        assert post_form(person, manage + "/forget").status_code == 404
        assert ratings(engine, ada) == [("2401.00001", 1)]
        assert "Your ratings are cleared" in post_form(person, manage + "/ratings/clear").text
        assert ratings(engine, ada) == []
        assert "None yet" in person.get(manage).text


def test_json_api_takes_interest_and_likes(site, settings, engine):
    url, ada, _ = site
    token = make_token(settings.secret_key, "manage", ["ada@example.org", ada.id])
    with httpx.Client(base_url=url) as api:
        got = api.patch(
            f"/api/manage/{token}",
            json={
                "keywords": "",
                "interest": "reward models for alignment",
                "likes": ["2401.00001"],
            },
        )
        assert got.status_code == 200, got.text
        body = got.json()
        assert (body["keywords"], body["interest"], body["likes"]) == (
            "",
            "reward models for alignment",
            ["2401.00001"],
        )
        bad = api.patch(f"/api/manage/{token}", json={"likes": ["not-an-id"]})
        assert bad.status_code == 400 and bad.json()["field"] == "likes"
        empty = api.patch(f"/api/manage/{token}", json={"interest": "", "likes": []})
        assert empty.status_code == 400  # nothing left to match on
        preview = api.post("/api/preview", json={"interest": "reward models", "likes": []})
        assert preview.status_code == 200 and preview.json()["ok"], preview.text
        assert preview.json()["papers"][0]["id"] == "2401.00001"
    sub = store.get_subscriber(engine, "ada@example.org")
    assert sub.interest == "reward models for alignment" and sub.likes == ["2401.00001"]


def test_a_long_non_ascii_paper_id_gets_working_links(site, settings, engine):
    """The file and feed sources keep ids of up to 200 characters, not only ASCII: the
    link for such a paper must record like any other (it was refused as not valid)."""
    url, ada, _ = site
    long_id = "論文" * 100  # 200 characters, 600 UTF-8 bytes
    store.merge_papers(
        engine, [PaperRecord(id=long_id, title="A paper with a long id", source="t")]
    )
    with httpx.Client(base_url=url) as person:
        done = click(person, feedback_path(settings, ada, long_id, "less"))
        assert done.status_code == 200 and "feedback-recorded" in done.text
    assert ratings(engine, ada) == [(long_id, -1)]
