"""The web app in process (Starlette's test client over the real ASGI app, a real
SQLite file, a real SMTP server on loopback): opt-in, self-service, and every abuse
case of issue 8 (enumeration, rate limits, honeypot, CSRF, forged and expired links,
hostile input)."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import time_machine
from conftest import TEST_SECRET, settings_with

from digest import store
from digest.models import Subscriber, utcnow
from digest.tokens import make_token
from digest.web import create_app
from digest.web.limits import DbRateLimiter, SignupLimits

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "https://digest.example.org"
LINK_RE = re.compile(
    r"https://digest\.example\.org/(confirm|manage|unsubscribe|view)/[A-Za-z0-9_.\-]+"
)


@pytest.fixture
def make_client(settings, engine):
    clients = []

    def _make(**changes):
        app = create_app(settings_with(settings, **changes), engine)
        client = TestClient(app, base_url=BASE)
        client.__enter__()
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client(signup_limit_per_ip=1000)


def csrf(client, path: str = "/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def signup(client, email: str, keywords: str = "diffusion", **fields):
    data = {
        "csrf_token": csrf(client),
        "email": email,
        "keywords": keywords,
        "timezone": "Europe/Berlin",
        "send_at": "07:30",
        "frequency": "daily",
        "max_papers": "10",
        **fields,
    }
    return client.post("/subscribe", data=data, follow_redirects=False)


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def links(msg: EmailMessage) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in LINK_RE.finditer(text_of(msg))}


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


def active_subscriber(engine, email="ada@example.org", keywords="diffusion") -> Subscriber:
    now = utcnow()
    return store.add_subscriber(
        engine,
        Subscriber(
            email=email, keywords=keywords, status="active", created_at=now, confirmed_at=now
        ),
    )


# ---------------------------------------------------------------- pages and headers


def test_signup_page_has_the_form_and_safe_headers(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    for name in ("email", "keywords", "topics", "frequency", "send_at", "timezone", "max_papers"):
        assert f'name="{name}"' in html
    assert 'value="diffusion-models"' in html  # the topic catalogue
    assert 'name="website"' in html  # honeypot
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<script nonce="{nonce}">' in html
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie


def test_healthz(client, settings, tmp_path):
    assert client.get("/healthz").json() == {"status": "ok"}
    broken = store.make_engine(f"sqlite:///{tmp_path}/missing/dir/x.db")
    with TestClient(create_app(settings, broken), base_url=BASE) as other:
        assert other.get("/healthz").status_code == 503


def test_unknown_page_is_friendly(client):
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert "Page not found" in page.text
    assert client.get("/api/nothing").json() == {"error": "Not Found"}


# ---------------------------------------------------------------- double opt-in


def test_double_opt_in_and_the_mail_echoes_nothing_typed(client, engine, smtp_sink):
    marker = "zebrafishmarker"
    answer = signup(client, "Ada@Example.org", keywords=f'diffusion, "{marker}"')
    assert answer.status_code == 303 and answer.headers["location"] == "/check-your-inbox"
    assert "Check your inbox" in client.get("/check-your-inbox").text
    sub = store.get_subscriber(engine, "ada@example.org")
    assert sub.status == "pending" and sub.timezone == "Europe/Berlin" and sub.max_papers == 10
    (mail,) = smtp_sink.messages()
    assert mail["To"] == "ada@example.org"
    assert mail["Subject"] == "Confirm your paper digest subscription"
    raw = mail.as_string()
    assert marker not in raw and "diffusion" not in raw
    confirm = path_of(links(mail)["confirm"])

    page = client.get(confirm)  # what a mail scanner does: nothing changes
    assert page.status_code == 200 and "Confirm my subscription" in page.text
    assert store.get_subscriber(engine, "ada@example.org").status == "pending"

    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = client.post(confirm, data={"csrf_token": token})
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert store.get_subscriber(engine, "ada@example.org").status == "active"

    replay = client.post(confirm, data={"csrf_token": token})
    assert replay.status_code == 400 and "already confirmed" in replay.text
    assert client.get(confirm).status_code == 400


def test_a_new_signup_replaces_an_older_confirmation_link(client, engine, smtp_sink):
    signup(client, "ada@example.org")
    signup(client, "ada@example.org", keywords="robotics")
    first, second = smtp_sink.messages()
    old, new = path_of(links(first)["confirm"]), path_of(links(second)["confirm"])
    assert client.get(old).status_code == 400
    assert client.post(new, data={"csrf_token": csrf(client, new)}).status_code == 200
    sub = store.get_subscriber(engine, "ada@example.org")
    assert sub.status == "active" and sub.keywords == "robotics"


# ---------------------------------------------------------------- enumeration


def test_known_address_gets_the_same_answer_and_a_manage_link(client, engine, smtp_sink):
    active_subscriber(engine, "known@example.org", "diffusion")
    known = signup(client, "known@example.org", keywords="something else")
    new = signup(client, "new@example.org", keywords="something else")
    assert (known.status_code, known.headers["location"], known.content) == (
        new.status_code,
        new.headers["location"],
        new.content,
    )
    api_known = client.post(
        "/api/subscriptions", json={"email": "known@example.org", "keywords": "x"}
    )
    api_new = client.post("/api/subscriptions", json={"email": "new2@example.org", "keywords": "x"})
    assert (api_known.status_code, api_known.json()) == (api_new.status_code, api_new.json())
    assert api_known.status_code == 202

    sub = store.get_subscriber(engine, "known@example.org")
    assert sub.keywords == "diffusion" and sub.status == "active"  # nothing changed
    mails = smtp_sink.by_recipient()
    assert [m["Subject"] for m in mails["known@example.org"]] == ["Your paper digest link"] * 2
    assert "manage" in links(mails["known@example.org"][0])
    assert [m["Subject"] for m in mails["new@example.org"]] == [
        "Confirm your paper digest subscription"
    ]


# ---------------------------------------------------------------- abuse limits


def test_at_most_a_few_mails_a_day_to_one_address(make_client, engine, smtp_sink):
    client = make_client(signup_limit_per_ip=1000, mail_limit_per_address=3)
    answers = [signup(client, "victim@example.org").status_code for _ in range(6)]
    assert answers == [303] * 3 + [429] * 3  # said, not swallowed (issue 16 item 6)
    assert len(smtp_sink.messages()) == 3
    other = make_client(signup_limit_per_ip=1000, mail_limit_per_address=3)
    signup(other, "someone-else@example.org")
    assert len(smtp_sink.messages()) == 4


def test_signups_per_ip_are_limited(make_client, engine, smtp_sink):
    client = make_client(signup_limit_per_ip=2)
    assert signup(client, "a@example.org").status_code == 303
    assert signup(client, "b@example.org").status_code == 303
    third = signup(client, "c@example.org")
    assert third.status_code == 429 and "Too many sign-ups" in third.text
    api = client.post("/api/subscriptions", json={"email": "d@example.org", "keywords": "x"})
    assert api.status_code == 429
    assert store.get_subscriber(engine, "c@example.org") is None
    assert len(smtp_sink.messages()) == 2


def test_honeypot_gets_the_same_answer_and_nothing_happens(client, engine, smtp_sink):
    answer = signup(client, "bot@example.org", website="http://spam.example")
    assert answer.status_code == 303 and answer.headers["location"] == "/check-your-inbox"
    assert store.get_subscriber(engine, "bot@example.org") is None
    assert smtp_sink.messages() == []


# ---------------------------------------------------------------- CSRF


def test_forms_need_their_csrf_token(client, engine, smtp_sink):
    data = {"email": "ada@example.org", "keywords": "diffusion"}
    assert client.post("/subscribe", data=data).status_code == 403
    assert client.post("/subscribe", data={**data, "csrf_token": "forged"}).status_code == 403
    token = csrf(client)
    cross = client.post(
        "/subscribe", data={**data, "csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    client.cookies.clear()  # a token without its cookie, as another site would send it
    assert client.post("/subscribe", data={**data, "csrf_token": token}).status_code == 403
    assert store.get_subscriber(engine, "ada@example.org") is None

    active_subscriber(engine)
    manage = f"/manage/{make_token(TEST_SECRET, 'manage', 'ada@example.org')}"
    for action in ("", "/pause", "/delete", "/resend"):
        answer = client.post(
            manage + action, data={"keywords": "hijacked", "confirm_delete": "yes"}
        )
        assert answer.status_code == 403, action
        assert "Please try again" in answer.text
    sub = store.get_subscriber(engine, "ada@example.org")
    assert sub.status == "active" and sub.keywords == "diffusion"
    assert smtp_sink.messages() == []


# ---------------------------------------------------------------- links


def forged_tokens(email: str = "ada@example.org") -> list[str]:
    good = make_token(TEST_SECRET, "manage", email)
    return [
        "x" * 40,
        make_token("another-secret", "manage", email),  # signed with another key
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # tampered signature
        make_token(TEST_SECRET, "view", "1:2026-01-01"),  # another purpose
        "a%00b" * 10,
        "..%2F..%2Fetc%2Fpasswd",
    ]


@pytest.mark.parametrize("kind", ["confirm", "manage", "unsubscribe", "view"])
def test_forged_links_get_a_friendly_page(client, engine, kind):
    active_subscriber(engine)
    for token in forged_tokens():
        for method in ("get", "post"):
            if kind == "view" and method == "post":
                continue
            page = getattr(client, method)(f"/{kind}/{token}")
            assert page.status_code in (400, 403, 404, 410), (kind, token, page.status_code)
            assert "text/html" in page.headers["content-type"]
            assert "Traceback" not in page.text
        if kind != "view":
            api = client.post(f"/api/{kind}/{token}")
            assert api.status_code in (400, 404, 405), (kind, api.status_code)
    assert store.get_subscriber(engine, "ada@example.org").status == "active"


def test_expired_links_say_so(client, engine):
    active_subscriber(engine)
    with time_machine.travel(datetime.now(UTC) - timedelta(days=400)):
        manage = make_token(TEST_SECRET, "manage", "ada@example.org")
        unsubscribe = make_token(TEST_SECRET, "unsubscribe", "ada@example.org")
        confirm = make_token(TEST_SECRET, "confirm", ["ada@example.org", 0])
    for path in (f"/manage/{manage}", f"/unsubscribe/{unsubscribe}", f"/confirm/{confirm}"):
        page = client.get(path)
        assert page.status_code == 400 and "This link has expired" in page.text, path
    assert client.post(f"/unsubscribe/{unsubscribe}").status_code == 400
    assert client.get(f"/api/manage/{manage}").json() == {"error": "this link has expired"}
    assert store.get_subscriber(engine, "ada@example.org").status == "active"


# ---------------------------------------------------------------- self-service


def test_manage_page_edits_pauses_resends_and_deletes(client, engine, settings, smtp_sink):
    active_subscriber(engine)
    path = f"/manage/{make_token(TEST_SECRET, 'manage', 'ada@example.org')}"
    page = client.get(path)
    assert page.status_code == 200 and "ada@example.org" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    saved = client.post(
        path,
        data={
            "csrf_token": token,
            "keywords": "robotics",
            "topics": ["speech"],
            "timezone": "Asia/Tokyo",
            "send_at": "06:15",
            "frequency": "weekly",
            "weekday": "wed",
            "max_papers": "7",
        },
    )
    assert saved.status_code == 200 and "Your changes are saved" in saved.text
    sub = store.get_subscriber(engine, "ada@example.org")
    assert (
        sub.keywords,
        sub.timezone,
        sub.send_at,
        sub.frequency,
        sub.weekday,
        sub.max_papers,
    ) == (
        "robotics, topic:speech",
        "Asia/Tokyo",
        "06:15",
        "weekly",
        "wed",
        7,
    )
    assert 'value="speech" checked' in saved.text and ">robotics</textarea>" in saved.text

    bad = client.post(path, data={"csrf_token": token, "keywords": "(unclosed", "send_at": "25:00"})
    assert bad.status_code == 400 and "never closed" in bad.text
    assert store.get_subscriber(engine, "ada@example.org").keywords == "robotics, topic:speech"

    assert "is paused" in client.post(path + "/pause", data={"csrf_token": token}).text
    assert store.get_subscriber(engine, "ada@example.org").status == "paused"
    assert "on again" in client.post(path + "/resume", data={"csrf_token": token}).text
    assert store.get_subscriber(engine, "ada@example.org").status == "active"

    client.post(path + "/resend", data={"csrf_token": token})
    (mail,) = smtp_sink.messages()
    assert mail["Subject"] == "Your paper digest link" and "manage" in links(mail)

    bucket = SignupLimits(settings, DbRateLimiter(engine)).address_bucket("ada@example.org")
    since = utcnow() - timedelta(days=1)
    assert store.count_rate_events(engine, bucket, since) == 1

    refused = client.post(path + "/delete", data={"csrf_token": token})
    assert refused.status_code == 400 and store.get_subscriber(engine, "ada@example.org")
    gone = client.post(path + "/delete", data={"csrf_token": token, "confirm_delete": "yes"})
    assert gone.status_code == 200 and "Everything is deleted" in gone.text
    assert store.get_subscriber(engine, "ada@example.org") is None
    assert store.count_rate_events(engine, bucket, since) == 0
    after = client.get(path)
    assert after.status_code == 410 and "Nothing here any more" in after.text


def test_unsubscribe_page_then_one_click(client, engine):
    active_subscriber(engine)
    path = f"/unsubscribe/{make_token(TEST_SECRET, 'unsubscribe', 'ada@example.org')}"
    page = client.get(path)
    assert page.status_code == 200 and 'method="post"' in page.text
    assert store.get_subscriber(engine, "ada@example.org").status == "active"
    client.cookies.clear()
    done = client.post(path, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert store.get_subscriber(engine, "ada@example.org").status == "unsubscribed"
    assert client.post(path).status_code == 200  # again: still fine


def test_view_in_browser_shows_the_stored_digest(client, engine, settings, smtp_sink):
    from digest import pipeline

    active_subscriber(engine, keywords="diffusion")
    pipeline.run_once(engine, settings, everyone=True)
    sub = store.get_subscriber(engine, "ada@example.org")
    (row,) = store.digests_for_edition(engine)
    assert row.status == "sent"
    page = client.get(f"/view/{make_token(TEST_SECRET, 'view', f'{sub.id}:{row.edition}')}")
    assert page.status_code == 200
    assert "Diffusion" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    other = client.get(f"/view/{make_token(TEST_SECRET, 'view', f'{sub.id + 1}:{row.edition}')}")
    assert other.status_code == 410


# ---------------------------------------------------------------- hostile input


HOSTILE = "<img src=x onerror=alert(1)>\"'&<script>alert(2)</script>"


def test_user_input_is_escaped_everywhere(client, engine, smtp_sink):
    now = utcnow()
    store.add_subscriber(
        engine,
        Subscriber(
            email="ada@example.org",
            keywords=f'"{HOSTILE}"',
            status="active",
            created_at=now,
            confirmed_at=now,
        ),
    )
    page = client.get(f"/manage/{make_token(TEST_SECRET, 'manage', 'ada@example.org')}")
    assert "<img src=x" not in page.text and "<script>alert(2)" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text

    answer = signup(client, HOSTILE, keywords=HOSTILE, timezone=HOSTILE, send_at="<b>")
    assert answer.status_code == 400
    assert "<img src=x" not in answer.text and "<script>alert(2)" not in answer.text
    crlf = signup(client, "ada@example.org\r\nBcc: victim@example.org", keywords="diffusion")
    assert crlf.status_code == 400 and "email address" in crlf.text
    huge = client.post("/subscribe", content=b"email=" + b"a" * 200_000)
    assert huge.status_code == 413
    assert len(smtp_sink.messages()) == 0


def test_signup_errors_name_the_field_and_keep_what_was_typed(client, engine):
    answer = signup(client, "ada@example.org", keywords="diffusion AND (", timezone="Mars/Base")
    assert answer.status_code == 400
    assert "never closed" in answer.text
    assert "ada@example.org" in answer.text
    assert store.get_subscriber(engine, "ada@example.org") is None


# ---------------------------------------------------------------- JSON API


def test_json_api_covers_the_same_actions(client, engine, smtp_sink):
    body = {
        "email": "ada@example.org",
        "keywords": "diffusion",
        "topics": ["speech"],
        "timezone": "America/New_York",
        "send_at": "08:00",
        "frequency": "weekly",
        "weekday": "fri",
        "max_papers": 5,
    }
    assert client.post("/api/subscriptions", json=body).status_code == 202
    bad = client.post("/api/subscriptions", json={**body, "keywords": 'x AND "'})
    assert bad.status_code == 400 and bad.json()["field"] == "keywords"
    confirm = links(smtp_sink.messages()[0])["confirm"].rsplit("/", 1)[1]
    confirmed = client.post(f"/api/confirm/{confirm}").json()
    assert confirmed["status"] == "active" and confirmed["weekday"] == "fri"
    assert confirmed["topics"] == ["speech"] and confirmed["keywords"] == "diffusion"

    token = make_token(TEST_SECRET, "manage", "ada@example.org")
    changed = client.patch(f"/api/manage/{token}", json={"keywords": "robotics", "max_papers": 9})
    assert changed.status_code == 200
    assert changed.json()["profile"] == "robotics, topic:speech"
    assert client.post(f"/api/manage/{token}/pause").json()["status"] == "paused"
    assert client.post(f"/api/manage/{token}/resume").json()["status"] == "active"
    assert client.post(f"/api/manage/{token}/resend").status_code == 202
    unsub = make_token(TEST_SECRET, "unsubscribe", "ada@example.org")
    assert client.post(f"/api/unsubscribe/{unsub}").json() == {"status": "unsubscribed"}
    assert client.delete(f"/api/manage/{token}").json() == {"deleted": True}
    assert client.get(f"/api/manage/{token}").status_code == 410
    assert store.get_subscriber(engine, "ada@example.org") is None


def test_preview_endpoint(client):
    found = client.post("/api/preview", json={"keywords": "diffusion", "max_papers": 3}).json()
    assert found["ok"] and 1 <= len(found["papers"]) <= 3 and found["matched"] >= 1
    assert all("diffusion" in p["why"].lower() for p in found["papers"])
    wrong = client.post("/api/preview", json={"keywords": "diffusion AND ("})
    assert wrong.status_code == 400 and wrong.json()["position"] is not None
    topics = client.get("/api/topics").json()
    assert any(t["name"] == "diffusion-models" for t in topics)


def test_admin_api_needs_the_bearer_token(make_client, engine):
    active_subscriber(engine)
    closed = make_client()
    assert closed.get("/api/admin/subscribers").status_code == 404
    admin = make_client(admin_token="s3cret-admin")
    assert admin.get("/api/admin/subscribers").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert admin.get("/api/admin/subscribers", headers=wrong).status_code == 401
    good = {"Authorization": "Bearer s3cret-admin"}
    rows = admin.get("/api/admin/subscribers", headers=good).json()
    assert [r["email"] for r in rows] == ["ada@example.org"]
    assert admin.get("/api/admin/subscribers?status=paused", headers=good).json() == []
    assert admin.get("/api/admin/editions", headers=good).json() == []


def test_unconfirmed_signups_are_forgotten_after_a_week(client, engine, smtp_sink):
    with time_machine.travel(datetime.now(UTC) - timedelta(days=8)):
        signup(client, "old@example.org")
    signup(client, "recent@example.org")
    assert store.get_subscriber(engine, "recent@example.org").status == "pending"
    signup(client, "new@example.org")
    assert store.get_subscriber(engine, "old@example.org") is None
    assert store.get_subscriber(engine, "recent@example.org") is not None


def test_profile_examples_on_the_page_are_valid_profiles():
    from digest.matching import compile_profile
    from digest.web.pages import PROFILE_EXAMPLES

    for query, _meaning in PROFILE_EXAMPLES:
        compile_profile(query)


def test_pages_can_be_overridden_from_the_templates_dir(make_client, tmp_path):
    (tmp_path / "mine" / "web").mkdir(parents=True)
    (tmp_path / "mine" / "web" / "message.html").write_text("<p>Our own: {{ title }}</p>")
    client = make_client(templates_dir=tmp_path / "mine")
    assert client.get("/check-your-inbox").text == "<p>Our own: Check your inbox</p>"
    assert "Subscribe" in client.get("/").text  # the other pages stay the shipped ones


def test_view_in_browser_shows_every_paper_of_a_digest_cut_at_100kb(
    client, engine, settings, smtp_sink
):
    from digest import pipeline
    from digest.sources.base import PaperRecord

    abstract = "Widgets are studied at length. " * 60
    store.merge_papers(
        engine,
        [
            PaperRecord(
                id=f"w-{i:03d}",
                title=f"Widget study number {i}",
                source="t",
                abstract=f"Result {i}. {abstract}",
                authors=[f"Author {i}"] * 8,
            )
            for i in range(200)
        ],
    )
    active_subscriber(engine, keywords="widget")
    store.update_subscriber(engine, "ada@example.org", max_papers=200)
    pipeline.run_once(engine, settings, everyone=True, fetch=False)
    (row,) = store.digests_for_edition(engine)
    assert len(row.paper_ids) == 200
    assert len(row.message) <= 100 * 1024
    html = smtp_sink.messages()[0].get_body(preferencelist=("html",)).get_content()
    assert "more papers" in html
    shown = sum(f"study number {i}<" in html for i in range(200))
    assert 0 < shown < 200
    sub = store.get_subscriber(engine, "ada@example.org")
    page = client.get(f"/view/{make_token(TEST_SECRET, 'view', f'{sub.id}:{row.edition}')}")
    assert page.status_code == 200
    assert all(f"study number {i}<" in page.text for i in range(200))


def test_an_unpaired_surrogate_in_a_json_body_is_a_422_not_a_500(client):
    """The default validation answer echoes the input and cannot encode "\\ud800"."""
    for body in (b'{"email": "\\ud800", "keywords": "x"}', b'{"email": 5, "keywords": "\\udfff"}'):
        answer = client.post(
            "/api/subscriptions", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "the request is not valid"
        assert "\\ud800" not in answer.text and "\\udfff" not in answer.text
