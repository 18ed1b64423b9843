"""A review as an attacker: forged form fields (CR/LF in the send time), bodies over
the cap on forms without an upload and on the API, and methods the metrics listener
does not serve. Each answer is the page or error a visitor or a client can read."""

from __future__ import annotations

import re
import warnings

import httpx
import pytest
from conftest import free_port, settings_with
from web_served import served

from digest import store
from digest.rendering import subscriber_links
from digest.subscriptions import new_subscriber
from digest.web import create_app
from digest.web.metrics import serve_metrics
from digest.web.security import MAX_BODY_BYTES

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "https://digest.example.org"
TOKEN = "metrics-test-token"


@pytest.fixture
def client(settings, engine):
    app = create_app(settings_with(settings, signup_limit_per_ip=1000, base_url=BASE), engine)
    with TestClient(app, base_url=BASE) as c:
        yield c


def csrf(client, path: str = "/") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def subscribed(settings, engine, email: str = "ada@example.org") -> str:
    """A confirmed subscriber's manage path."""
    sub = store.add_subscriber(engine, new_subscriber(settings, email, "diffusion"))
    manage = subscriber_links(settings_with(settings, base_url=BASE), email, None, sub.id)
    return manage["manage"].removeprefix(BASE)


# ---------------------------------------------------------------- CR/LF in a field


@pytest.mark.parametrize("send_at", ["07:30\r\nX", "07:30\r\nBcc: x@evil.example", "07:30\x00"])
def test_sign_up_refuses_a_send_time_with_a_line_break(client, engine, send_at):
    data = {"csrf_token": csrf(client), "email": "ada@example.org", "keywords": "diffusion"}
    res = client.post("/subscribe", data={**data, "send_at": send_at}, follow_redirects=False)
    assert res.status_code == 400, res.text[:300]
    assert "HH:MM" in res.text or "control characters" in res.text
    assert store.get_subscriber(engine, "ada@example.org") is None


def test_manage_refuses_a_send_time_with_a_line_break_and_keeps_the_stored_one(
    client, settings, engine
):
    path = subscribed(settings, engine)
    before = store.get_subscriber(engine, "ada@example.org").send_at
    res = client.post(
        path,
        data={"csrf_token": csrf(client, path), "keywords": "diffusion", "send_at": "07:30\r\nX"},
        follow_redirects=False,
    )
    assert res.status_code == 400, res.text[:300]
    assert "control characters" in res.text
    assert store.get_subscriber(engine, "ada@example.org").send_at == before


def test_a_field_cut_at_its_limit_is_still_refused_when_spaces_precede_the_cut(client, engine):
    """A value cut where only spaces remain would pass as the time after stripping."""
    data = {"csrf_token": csrf(client), "email": "ada@example.org", "keywords": "diffusion"}
    res = client.post(
        "/subscribe", data={**data, "send_at": "07:30" + " " * 200 + "X"}, follow_redirects=False
    )
    assert res.status_code == 400
    assert store.get_subscriber(engine, "ada@example.org") is None


def test_a_plain_send_time_still_works(client, engine):
    data = {"csrf_token": csrf(client), "email": "ada@example.org", "keywords": "diffusion"}
    res = client.post("/subscribe", data={**data, "send_at": " 07:30 "}, follow_redirects=False)
    assert res.status_code == 303
    assert store.get_subscriber(engine, "ada@example.org").send_at == "07:30"


# ---------------------------------------------------------------- bodies over the cap


def big_form(token: str) -> dict[str, str]:
    return {"csrf_token": token, "keywords": "x" * (MAX_BODY_BYTES + 10)}


def test_a_body_over_the_cap_on_a_form_without_an_upload_gets_a_page(client, settings, engine):
    path = subscribed(settings, engine)
    for target in (path, f"{path}/pause", "/confirm/whatever-token"):
        res = client.post(target, data=big_form(csrf(client, path)), follow_redirects=False)
        assert res.status_code == 413, target
        assert res.headers["content-type"].startswith("text/html"), target
        assert "This form is too big" in res.text
        assert "content-security-policy" in res.headers
    assert store.get_subscriber(engine, "ada@example.org").status == "active"


def test_a_streamed_body_over_the_cap_gets_the_page_too(client, settings, engine):
    """No Content-Length (chunked): counted while read, refused with the same page."""
    path = subscribed(settings, engine)
    token = csrf(client, path)

    def chunks():
        yield f"csrf_token={token}&keywords=".encode()
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"x" * 1024

    res = client.post(
        path,
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert res.status_code == 413
    assert "This form is too big" in res.text


def test_a_body_over_the_cap_on_the_api_gets_json(client):
    res = client.post(
        "/api/subscribe",
        content=b'{"email": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert res.status_code == 413
    assert "KiB" in res.json()["error"]


# ---------------------------------------------------------------- the metrics listener


def test_the_metrics_listener_answers_head_as_get_and_refuses_other_methods(settings, engine):
    port = free_port()
    listen = settings_with(settings, admin_token=TOKEN, metrics_listen=f"127.0.0.1:{port}")
    stop = serve_metrics(listen, engine)
    assert stop is not None
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        got = httpx.get(url, headers=auth)
        head = httpx.head(url, headers=auth)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == got.headers["content-length"] != "0"
        assert httpx.head(url).status_code == 401
        assert httpx.head(url.replace("/metrics", "/x"), headers=auth).status_code == 404
        for method in ("POST", "PUT", "DELETE"):
            res = httpx.request(method, url, headers=auth)
            assert res.status_code == 405, method
            assert res.headers["allow"] == "GET, HEAD"
        # the main app answers HEAD the same way where it serves the metrics itself
        with served(settings_with(settings, admin_token=TOKEN), engine) as site:
            assert httpx.head(f"{site}/metrics", headers=auth).status_code == 200
    finally:
        stop()


def test_a_long_interest_without_a_file_is_not_blamed_on_a_file(client, engine):
    """The sign-up form takes a library upload too; over the cap, the page cannot
    know which part was too big, and must not say a file was when none was sent."""
    data = {"csrf_token": csrf(client), "email": "ada@example.org", "keywords": "diffusion"}
    res = client.post("/subscribe", data={**data, "interest": "x" * (MAX_BODY_BYTES + 10)})
    assert res.status_code == 413
    assert "The file is too big" not in res.text
    assert "What was sent is too big" in res.text
    assert 'id="profile-form"' in res.text
    assert store.get_subscriber(engine, "ada@example.org") is None


# ---------------------------------------------------------------- garbled links


def test_a_link_with_junk_added_is_not_valid(client, settings, engine):
    """itsdangerous skips characters outside base64 when decoding: a token with junk
    added still verified, so one link had many spellings."""
    from digest.tokens import make_feedback_token, make_token

    path = subscribed(settings, engine)
    sub = store.get_subscriber(engine, "ada@example.org")
    unsubscribe = "/unsubscribe/" + make_token(
        settings.secret_key, "unsubscribe", ["ada@example.org", sub.id]
    )
    feedback = "/feedback/" + make_feedback_token(settings.secret_key, sub.id, 0, "2401.00001")
    for link in (path, unsubscribe):
        assert client.get(link).status_code == 200
        for junk in ("%ff", "!", "~", "%C3%A9"):
            res = client.get(link + junk)
            assert res.status_code == 400, (link, junk)
            assert "This link is not valid" in res.text
    for junk in ("%ff", "!", "~"):
        res = client.get(feedback + junk + "?vote=more")
        assert res.status_code == 400 and "This link is not valid" in res.text
    res = client.post(unsubscribe + "!")
    assert res.status_code == 400
    assert store.get_subscriber(engine, "ada@example.org").status == "active"


# ---------------------------------------------------------------- numbers


def test_the_api_refuses_true_as_a_paper_count(client, engine):
    for value in (True, False):
        res = client.post(
            "/api/subscriptions",
            json={"email": "ada@example.org", "keywords": "diffusion", "max_papers": value},
        )
        assert res.status_code == 422, res.text
        assert res.json()["detail"][0]["loc"][-1] == "max_papers"
    assert store.get_subscriber(engine, "ada@example.org") is None
    ok = client.post(
        "/api/subscriptions",
        json={"email": "ada@example.org", "keywords": "diffusion", "max_papers": 7},
    )
    assert ok.status_code == 202
    assert store.get_subscriber(engine, "ada@example.org").max_papers == 7


def test_the_form_refuses_a_paper_count_in_other_digits(client, engine):
    """`int()` reads Arabic-Indic digits; the send time refuses them, so does this."""
    data = {"csrf_token": csrf(client), "email": "ada@example.org", "keywords": "diffusion"}
    res = client.post("/subscribe", data={**data, "max_papers": "\u0663"}, follow_redirects=False)
    assert res.status_code == 400
    assert "whole number" in res.text
    assert store.get_subscriber(engine, "ada@example.org") is None


def test_a_page_answering_405_names_the_methods_allowed(client):
    """RFC 9110: a 405 carries Allow; the HTML page for it dropped Starlette's."""
    res = client.request("PUT", "/")
    assert res.status_code == 405
    assert res.headers["content-type"].startswith("text/html")
    assert "GET" in res.headers["allow"]
    res = client.request("DELETE", "/unsubscribe/some-token")
    assert res.status_code == 405 and res.headers["allow"]


@pytest.mark.chromium
def test_the_pages_load_in_chromium_without_a_console_error(settings, engine, browser):
    """No CSP violation, no failed request: every first visit asked for /favicon.ico
    and got a 404 (a console error and a log line) before the pages named an icon."""
    sub = store.add_subscriber(engine, new_subscriber(settings, "ada@example.org", "diffusion"))
    with served(settings, engine) as url:
        manage = subscriber_links(settings_with(settings, base_url=url), sub.email, None, sub.id)
        page = browser.new_context().new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        for link in (f"{url}/", manage["manage"], manage["unsubscribe"]):
            page.goto(link)
            page.wait_for_load_state("networkidle")
            assert errors == [], link
