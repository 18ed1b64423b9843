"""The web app under attack or trouble: a cross-site Origin is refused, a sign-up
takes the same work for a known address as for a new one, pages say "back in a
moment" while the database is down, an unexpected error still gets the security
headers, IPv6 clients are limited per /64, and the example secret is refused for a
public site."""

from __future__ import annotations

import re
import warnings
from datetime import timedelta

import pytest
from conftest import settings_with, wait_for
from sqlalchemy import event

from digest import store
from digest.errors import InputError
from digest.models import utcnow
from digest.subscriptions import new_subscriber
from digest.web import create_app
from digest.web.accounts import ProfileInput
from digest.web.limits import DbRateLimiter, SignupLimits, network_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "https://digest.example.org"


@pytest.fixture
def client(settings, engine):
    app = create_app(settings_with(settings, signup_limit_per_ip=1000), engine)
    with TestClient(app, base_url=BASE) as c:
        yield c


def form(client, email: str = "ada@example.org") -> dict[str, str]:
    page = client.get("/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return {"csrf_token": token, "email": email, "keywords": "diffusion"}


# ---------------------------------------------------------------- CSRF: Origin


def test_a_cross_site_origin_is_refused_even_with_a_valid_cookie_and_token(client, engine):
    """A sibling subdomain can plant its own CSRF cookie and fetch a matching token;
    the browser still names the attacking origin."""
    answer = client.post(
        "/subscribe",
        data=form(client),
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert "Please try again" in answer.text
    assert store.get_subscriber(engine, "ada@example.org") is None


@pytest.mark.parametrize("origin", [BASE, "null", None])
def test_our_own_origin_and_null_are_accepted(client, engine, origin):
    """Chromium sends `Origin: null` for our forms, as our referrer policy is
    no-referrer: refusing it would break every form."""
    headers = {"origin": origin} if origin else {}
    answer = client.post("/subscribe", data=form(client), headers=headers, follow_redirects=False)
    assert answer.status_code == 303
    assert store.get_subscriber(engine, "ada@example.org").status == "pending"


# ---------------------------------------------------------------- enumeration


def test_the_work_a_visitor_waits_for_is_the_same_for_new_and_known_addresses(settings, engine):
    """Creating a row for a new address costs a write a known address does not: that
    work now runs after the answer, and what runs before it issues the same SQL."""
    store.add_subscriber(
        engine, new_subscriber(settings, "known@example.org", "robots", status="active")
    )
    app = create_app(settings_with(settings, signup_limit_per_ip=1000), engine)
    accounts = app.state.web.accounts
    data = ProfileInput(keywords="diffusion")

    def statements_for(address: str) -> list[str]:
        seen: list[str] = []

        def record(conn, cursor, statement, *args):  # noqa: ANN001
            seen.append(re.sub(r"\s+", " ", statement))

        event.listen(engine, "before_cursor_execute", record)
        try:
            assert accounts.check_signup(address, data, "192.0.2.1") is not None
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return seen

    new, known = statements_for("new@example.org"), statements_for("known@example.org")
    assert new == known
    assert not any("subscriber" in s.lower() for s in new)
    assert store.get_subscriber(engine, "new@example.org") is None


def test_sign_up_still_stores_and_mails_after_answering(client, engine, smtp_sink):
    answer = client.post("/subscribe", data=form(client), follow_redirects=False)
    assert answer.status_code == 303
    assert store.get_subscriber(engine, "ada@example.org").status == "pending"
    mails = wait_for(lambda: smtp_sink.messages(), timeout=10)
    assert mails[0]["Subject"] == "Confirm your paper digest subscription"
    api = client.post("/api/subscriptions", json={"email": "bo@example.org", "keywords": "x"})
    assert api.status_code == 202
    assert store.get_subscriber(engine, "bo@example.org").status == "pending"


# ---------------------------------------------------------------- database down


@pytest.fixture
def down_client(settings, tmp_path):
    """The app over a database that cannot be opened (its folder does not exist)."""
    url = f"sqlite:///{tmp_path / 'missing' / 'digest.db'}"
    engine = store.make_engine(url)
    app = create_app(settings_with(settings, database_url=url), engine)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        yield c
    engine.dispose()


def test_pages_say_back_in_a_moment_while_the_database_is_down(down_client):
    assert down_client.get("/healthz").status_code == 503
    answer = down_client.post("/subscribe", data=form(down_client), follow_redirects=False)
    assert answer.status_code == 503
    assert "Back in a moment" in answer.text
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    api = down_client.post("/api/preview", json={"keywords": "diffusion"})
    assert api.status_code == 503
    assert api.json()["error"].startswith("the service is unavailable")


class BrokenLimiter:
    """A rate limiter (the documented stand-in seam) whose store fails oddly."""

    def allow(self, bucket: str, limit: int, window: timedelta) -> bool:
        raise RuntimeError("limiter broke")

    def forget(self, buckets) -> None:  # noqa: ANN001
        raise RuntimeError("limiter broke")


def test_an_unexpected_error_still_gets_the_security_headers(settings, engine):
    app = create_app(settings, engine, limiter=BrokenLimiter())
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        answer = c.post("/subscribe", data=form(c), follow_redirects=False)
    assert answer.status_code == 500
    assert "Traceback" not in answer.text
    assert "limiter broke" not in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in answer.headers


# ---------------------------------------------------------------- IPv6 clients


def test_an_ipv6_client_is_limited_per_64_not_per_address(settings, engine):
    assert network_of("2001:db8::1") == network_of("2001:db8::ffff:7") == "2001:db8::/64"
    assert network_of("2001:db8:0:1::1") != network_of("2001:db8::1")
    assert network_of("::ffff:192.0.2.7") == network_of("192.0.2.7") == "192.0.2.7"
    assert network_of("testclient") == "testclient"
    limits = SignupLimits(settings_with(settings, signup_limit_per_ip=2), DbRateLimiter(engine))
    assert limits.allow_signup("2001:db8::1")
    assert limits.allow_signup("2001:db8::2")
    assert not limits.allow_signup("2001:db8::3")
    assert limits.allow_signup("2001:db8:0:1::1")
    assert (
        store.count_rate_events(
            engine, limits._bucket("ip", "2001:db8::/64"), utcnow() - timedelta(hours=1)
        )
        == 2
    )


# ---------------------------------------------------------------- the example secret


def test_digest_web_refuses_the_example_secret_for_a_public_site(cli):
    """With the published example key anyone could sign a manage link for any
    address; `digest web` says so and exits 2 instead of serving."""
    answer = cli(
        "web",
        "--port",
        "1",
        extra_env={"DIGEST_SECRET_KEY": "change-me-please", "DIGEST_BASE_URL": BASE},
    )
    assert answer.code == 2
    assert "DIGEST_SECRET_KEY" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_the_example_secret_is_allowed_while_links_point_at_this_machine(settings):
    from digest.web.server import check_secret

    local = settings_with(settings, secret_key="change-me-please", base_url="http://127.0.0.1:8000")
    check_secret(local)  # no error: a local trial
    check_secret(settings_with(settings, secret_key="a-real-secret", base_url=BASE))


def test_the_example_secret_is_refused_when_listening_beyond_this_machine(settings):
    from digest.web.server import check_secret

    local = settings_with(settings, secret_key="change-me-please", base_url="http://127.0.0.1:8000")
    check_secret(local, "127.0.0.1")  # a local trial
    check_secret(local, "::1")
    for host in ("0.0.0.0", "::", "192.168.1.10", "digest.example.org"):
        with pytest.raises(InputError, match="DIGEST_SECRET_KEY"):
            check_secret(local, host)
