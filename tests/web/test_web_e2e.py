"""End to end in real headless Chromium against the app served by uvicorn on a
loopback port, with mail through a real SMTP server: sign up, confirm, receive a
digest, manage, unsubscribe, receive nothing. Plus the RFC 8058 one-click POST as a
mailbox provider sends it (no cookies), and `digest web` as a real process."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from conftest import REPO, free_port, settings_with, wait_for
from web_served import served

from digest import pipeline, store
from digest.config import Settings
from digest.models import Subscriber, utcnow

SCREENSHOTS = REPO / "test-output" / "web"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@dataclass
class Served:
    url: str
    settings: Settings


@pytest.fixture
def server(settings, engine):
    """The app under uvicorn in a background thread; links in mail point at it."""
    with served(settings, engine) as url:
        yield Served(url, settings_with(settings, base_url=url))


def link(msg, base: str, kind: str) -> str:
    body = msg.get_body(preferencelist=("plain",)).get_content()
    found = re.search(rf"{re.escape(base)}/{kind}/[A-Za-z0-9_.\-]+", body)
    assert found, f"no {kind} link in: {body[:500]}"
    return found.group(0)


def one_click_url(msg) -> str:
    """The http(s) URI of the List-Unsubscribe header (a mailto: may sit beside it)."""
    uris = re.findall(r"<([^<>]+)>", str(msg["List-Unsubscribe"]))
    return next(u for u in uris if u.startswith(("https://", "http://")))


def run_edition(engine, settings: Settings, **options) -> pipeline.RunReport:
    """`pipeline.run_once` on its own thread: Playwright's sync API keeps an event
    loop running on this one, and the pipeline starts its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(pipeline.run_once, engine, settings, **options).result(timeout=120)


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5000


@pytest.mark.chromium
def test_sign_up_confirm_digest_manage_unsubscribe_in_chromium(server, browser, engine, smtp_sink):
    base = server.url
    context = browser.new_context(timezone_id="Asia/Tokyo", viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # Sign up: the time zone comes from the browser; the preview follows the typing.
    page.goto(base + "/")
    assert page.locator("#timezone").input_value() == "Asia/Tokyo"
    page.fill("#email", "ada@example.org")
    page.fill("#keywords", "diffusion")
    page.locator("#preview-list li").first.wait_for(timeout=10_000)
    assert "diffusion" in page.locator("#preview-list").inner_text().lower()
    assert "recent papers match" in page.locator("#preview-count").inner_text()
    page.fill("#keywords", 'diffusion AND ("unclosed')
    page.locator("#preview-error").wait_for(state="visible", timeout=10_000)
    page.fill("#keywords", "diffusion")
    page.click("details.topic-list > summary")
    page.check("input[name=topics][value=speech]")
    assert "(1 of" in page.locator("#topic-count").inner_text()
    page.check("input[name=frequency][value=daily]")
    assert page.locator("#weekday-row").is_hidden()
    page.check("input[name=frequency][value=weekly]")
    assert page.locator("#weekday-row").is_visible()
    page.check("input[name=frequency][value=daily]")
    page.fill("#send_at", "07:30")
    page.fill("#max_papers", "5")
    page.locator("#preview-list li").first.wait_for(timeout=10_000)
    shoot(page, "signup")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/check-your-inbox")
    assert "Check your inbox" in page.content()

    # The confirmation email; following its link alone changes nothing.
    confirm_mail = wait_for(lambda: smtp_sink.messages(), timeout=15)[0]
    assert confirm_mail["Subject"] == "Confirm your paper digest subscription"
    page.goto(link(confirm_mail, base, "confirm"))
    assert store.get_subscriber(engine, "ada@example.org").status == "pending"
    page.click("text=Confirm my subscription")
    page.wait_for_selector("text=You are subscribed")
    sub = store.get_subscriber(engine, "ada@example.org")
    assert (sub.status, sub.timezone, sub.send_at, sub.max_papers) == (
        "active",
        "Asia/Tokyo",
        "07:30",
        5,
    )
    assert sub.keywords == "diffusion, topic:speech"

    # An edition: the digest arrives, and its links lead back here.
    report = run_edition(engine, server.settings, everyone=True)
    assert report.send.sent == 1
    digest_mail = smtp_sink.messages()[-1]
    assert digest_mail["To"] == "ada@example.org"
    assert one_click_url(digest_mail) == link(digest_mail, base, "unsubscribe")

    page.goto(link(digest_mail, base, "view"))
    assert "Diffusion" in page.content()
    shoot(page, "view")

    page.goto(link(digest_mail, base, "manage"))
    assert page.locator("#keywords").input_value() == "diffusion"
    assert page.locator("input[name=topics][value=speech]").is_checked()
    shoot(page, "manage")
    page.fill("#keywords", '"reinforcement learning", robot*')
    page.uncheck("input[name=topics][value=speech]")
    page.check("input[name=frequency][value=weekly]")
    page.select_option("#weekday", "fri")
    page.click("text=Save changes")
    page.wait_for_selector("text=Your changes are saved")
    sub = store.get_subscriber(engine, "ada@example.org")
    assert (sub.keywords, sub.frequency, sub.weekday) == (
        '"reinforcement learning", robot*',
        "weekly",
        "fri",
    )

    page.goto(link(digest_mail, base, "unsubscribe"))
    shoot(page, "unsubscribe")
    page.click("button:has-text('Unsubscribe')")
    page.wait_for_selector("text=You are unsubscribed")
    assert store.get_subscriber(engine, "ada@example.org").status == "unsubscribed"

    count = len(smtp_sink.messages())
    later = run_edition(engine, server.settings, everyone=True, now=utcnow() + timedelta(days=8))
    assert later.build.built == 0 and later.send.sent == 0
    assert len(smtp_sink.messages()) == count
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()


def test_one_click_unsubscribe_without_cookies(server, engine, smtp_sink):
    now = utcnow()
    store.add_subscriber(
        engine,
        Subscriber(email="bob@example.org", keywords="diffusion", created_at=now, confirmed_at=now),
    )
    pipeline.run_once(engine, server.settings, everyone=True)
    (mail,) = smtp_sink.messages()
    # The test server's base URL is plain http, so the message carries the link but
    # not the RFC 8058 promise (HTTPS only; tests/rendering/test_rendering_mime.py checks it);
    # the endpoint must still behave as one-click, as a provider would use it.
    assert mail["List-Unsubscribe-Post"] is None
    target = one_click_url(mail)
    # What a mailbox provider sends: a bare POST, no cookie, no CSRF token.
    answer = httpx.post(
        target,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 200
    assert "set-cookie" not in answer.headers
    assert store.get_subscriber(engine, "bob@example.org").status == "unsubscribed"
    again = httpx.post(target, content=b"", timeout=10)  # replayed: still fine, no 500
    assert again.status_code == 200


@pytest.mark.parametrize("command", ["web", "serve"])
def test_digest_web_and_serve_listen_and_stop_on_sigterm(command, env, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", command, "--host", "127.0.0.1", "--port", str(port)],
        # --port wins over the setting; the proxy on loopback is trusted.
        env={
            **env,
            "DIGEST_HTTP_PORT": "1",
            "DIGEST_SIGNUP_LIMIT_PER_IP": "1",
            "DIGEST_TRUSTED_PROXIES": "127.0.0.1",
        },
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=30, interval=0.1)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert "Subscribe" in page.text and "server" not in page.headers

        def sign_up(address: str, client_ip: str) -> int:
            return httpx.post(
                f"http://127.0.0.1:{port}/api/subscriptions",
                json={"email": address, "keywords": "diffusion"},
                headers={"X-Forwarded-For": client_ip},
                timeout=10,
            ).status_code

        # The limit counts the visitor's IP as the trusted proxy reports it.
        assert sign_up("a@example.org", "203.0.113.7") == 202
        assert sign_up("b@example.org", "203.0.113.7") == 429
        assert sign_up("c@example.org", "198.51.100.9") == 202
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.chromium
def test_the_live_preview_shows_the_parsers_own_message(server, browser):
    page = browser.new_page()
    page.goto(server.url + "/")
    page.fill("#keywords", "diffusion AND (")
    box = page.locator("#preview-error")
    box.wait_for(state="visible", timeout=10_000)
    assert "never closed" in box.inner_text()
    assert "(at character" in box.inner_text()
    # Our own form still goes through in a real browser (it sends Origin: null).
    page.fill("#keywords", "diffusion")
    page.fill("#email", "ada@example.org")
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/check-your-inbox")
