"""`digest preview` as a template author uses it: the real command in a subprocess,
against a real SQLite file (empty: the bundled sample is used), a real SMTP server on
loopback for --send-to, and a real HTTP server for --serve."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import html5lib
import pytest
from conftest import wait_for

from digest.errors import InputError, QueryError
from digest.matching import compile_profile
from digest.preview import PreviewServer, render_preview


def test_preview_text_on_the_bundled_sample(cli) -> None:
    result = cli("preview", "--keywords", "language model", "--format", "text")
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("PAPER DIGEST - ")
    assert "new papers for you" in result.stdout and "Unsubscribe: https://" in result.stdout


def test_preview_html_to_a_file_is_valid_html(cli, tmp_path: Path) -> None:
    out = tmp_path / "p.html"
    result = cli("preview", "-k", "diffusion", "--out", str(out))
    assert result.code == 0, result.stderr
    html = out.read_text()
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(html)
    assert parser.errors == []
    assert "<mark" in html


def test_preview_eml_parses_with_both_parts(cli) -> None:
    result = cli("preview", "-k", "diffusion", "--format", "eml")
    assert result.code == 0, result.stderr
    msg = email.message_from_bytes(result.stdout.encode(), policy=email.policy.default)
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


def test_preview_for_a_subscriber_and_a_date(cli) -> None:
    assert cli("subscribe", "ana@example.org", "-k", "language model").code == 0
    result = cli("preview", "ana@example.org", "--date", "2024-11-22", "--format", "text")
    assert result.code == 0, result.stderr
    assert "Friday 22 November 2024" in result.stdout
    assert "1 new paper for you" in result.stdout and "TÜLU 3" in result.stdout
    assert "ana@example.org subscribed" in result.stdout


def test_preview_bad_input_exits_2_with_a_clear_message(cli) -> None:
    cases = [
        (["preview", "nobody@example.org"], "no subscriber"),
        (["preview", "-k", "x", "--date", "yesterday"], "--date"),
        (["preview", "-k", "x", "--send-to", "not an address"], "address"),
        (["preview", "-k", "diffusion", "--out", "/nonexistent/dir/p.html"], "--out"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.code == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("email_addr", "keywords", "fmt", "on", "message"),
    [
        ("a@example.org", "x", "html", None, "not both"),
        (None, "x", "pdf", None, "--format"),
        (None, "x", "html", date(1999, 1, 1), "no papers from 1999-01-01"),
        (None, "   ", "html", None, "--keywords"),
    ],
)
def test_render_preview_refuses_bad_requests(
    engine, settings, email_addr, keywords, fmt, on, message
) -> None:
    with pytest.raises(InputError, match=message):
        render_preview(engine, settings, email_addr, keywords, fmt, on)


def test_template_error_names_file_and_line(cli, tmp_path: Path) -> None:
    overrides = tmp_path / "tpl"
    (overrides / "partials").mkdir(parents=True)
    (overrides / "partials" / "more.html").write_text("<p>\n{% for x in %}\n</p>\n")
    (overrides / "partials" / "card.html").write_text("<p>\n\n{{ paper.title | }}</p>\n")
    result = cli("preview", "-k", "diffusion", extra_env={"DIGEST_TEMPLATES_DIR": str(overrides)})
    assert result.code == 2
    assert "card.html, line 3" in result.stderr and "Traceback" not in result.stderr


def test_send_to_delivers_a_test_email(cli, smtp_sink) -> None:
    result = cli("preview", "-k", "diffusion", "--send-to", "author@example.org")
    assert result.code == 0, result.stderr
    messages = wait_for(smtp_sink.messages)
    assert [str(m["To"]) for m in messages] == ["author@example.org"]
    assert [p.get_content_type() for p in messages[0].iter_parts()] == ["text/plain", "text/html"]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serve_re_renders_when_a_template_changes(env, tmp_path: Path) -> None:
    overrides = tmp_path / "tpl"
    (overrides / "partials").mkdir(parents=True)
    header = overrides / "partials" / "header.html"
    header.write_text("<h1>First version</h1>\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "preview", "-k", "diffusion", "--serve", "--port", "0"],
        env={**env, "DIGEST_TEMPLATES_DIR": str(overrides)},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline()
        assert "serving the preview on http://127.0.0.1:" in line, line
        url = line.split(" on ", 1)[1].split()[0]
        status, body = _get(url)
        assert status == 200 and "First version" in body and "<mark" in body
        header.write_text("<h1>Second version</h1>\n")
        wait_for(lambda: "Second version" in _get(url)[1], timeout=10)
        header.write_text("<h1>{{ broken </h1>\n")
        status, body = wait_for(lambda: (r := _get(url))[0] == 500 and r, timeout=10)
        assert "header.html, line 1" in body
        header.write_text("<h1>Fixed</h1>\n")
        wait_for(lambda: "Fixed" in _get(url)[1], timeout=10)
        status, text = _get(url + "text")
        assert status == 200 and "PAPER DIGEST" in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_open_hands_the_written_file_to_the_browser(cli, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "fake-browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > "{opened}"\n')
    browser.chmod(0o755)
    result = cli("preview", "-k", "diffusion", "--open", extra_env={"BROWSER": str(browser)})
    assert result.code == 0, result.stderr
    written = tmp_path / "digest-preview.html"
    assert "<mark" in written.read_text()
    assert wait_for(lambda: opened.exists() and opened.read_text().strip()) == written.as_uri()


def test_serve_on_a_busy_port_is_a_clear_error() -> None:
    first = PreviewServer(lambda fmt: b"", lambda: 0, 0)
    try:
        with pytest.raises(InputError, match="--port: cannot listen"):
            PreviewServer(lambda fmt: b"", lambda: 0, first.port)
    finally:
        first.httpd.server_close()


def test_preview_without_a_profile_is_the_trending_digest(cli):
    res = cli("preview", "--format", "text")
    assert res.code == 0, res.stderr
    # The bundled sample is used when the database is empty; `*` keeps every paper
    # up to max papers, the most upvoted first.
    assert "TÜLU 3" in res.stdout or "Language Model Can Listen" in res.stdout
    empty = cli("preview", "--keywords", "  ")
    assert empty.code == 2 and "empty" in empty.stderr


def test_preview_of_a_legacy_subscriber_profile_renders_like_the_pipeline(engine, settings) -> None:
    # A profile stored before the language grew operators is read by the pipeline with
    # compile_stored; preview used to refuse it with a query error instead.
    from digest import store
    from digest.models import Subscriber
    from digest.preview import render_preview

    store.add_subscriber(engine, Subscriber(email="old@example.org", keywords='diffusion, "robot'))
    with pytest.raises(QueryError):
        compile_profile('diffusion, "robot')
    text = render_preview(engine, settings, "old@example.org", None, "text").decode()
    assert "matched: diffusion" in text
