"""Hostile input in every field renders escaped, bounded in size, and never injects a
header: script tags, attribute break-outs, CRLF, 5,000 authors, a 1 MB abstract,
emoji and right-to-left text, bad URLs, lone surrogates."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import date

import html5lib
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_rendering import make_settings
from test_rendering_mime import EXPECTED_HEADERS

from digest.matching import Hit, Match
from digest.models import Paper
from digest.rendering import MESSAGE_LIMIT, Item, build_message, make_environment, render_digest

EDITION = date(2026, 11, 24)
RTL = "نموذج انتشار للتعلم الآلي עם טקסט בעברית"
EMOJI = "🤖🧠📈👩‍🔬🏳️‍🌈"


def hostile_papers() -> list[Paper]:
    big = ("A sentence about diffusion and robots. " * 30_000)[:1_000_000]
    return [
        Paper(
            seq=1,
            id="h1",
            title="<script>alert('t')</script> diffusion",
            abstract='"><img src=x onerror=alert(1)> diffusion body',
            authors=["<b>Eve</b>", "Mallory\r\nBcc: victim@example.org"],
            categories=['cs.LG"><script>x()</script>'],
            url="javascript:alert(1)",
            pdf_url='https://example.org/a.pdf"><script>alert(2)</script>',
            code_url="https://example.org/code\r\nX-Evil: 1",
            project_url="data:text/html;base64,PHNjcmlwdD4=",
            hf_url="https://huggingface.co/papers/h1",
            upvotes=-5,
        ),
        Paper(
            seq=2,
            id="h2",
            title="Title\r\nBcc: victim@example.org\r\n\r\n<html> diffusion",
            abstract=big,
            authors=[f"Author Number {i} <x@y>" for i in range(5_000)],
            published=date(2026, 11, 23),
        ),
        Paper(
            seq=3,
            id="h3",
            title=f"{EMOJI} {RTL} diffusion \u202eevil\u202c \ud800 \x00\x07",
            abstract=f"{RTL}. {EMOJI} diffusion. " * 50,
            ai_summary=f"{EMOJI} {RTL} summary with diffusion",
            authors=[RTL, EMOJI],
        ),
        Paper(seq=4, id="h4", title="x" * 200_000 + " diffusion", abstract="y" * 50_000),
    ]


def render_hostile(keywords: str = "diffusion") -> tuple[object, bytes]:
    settings = make_settings()
    items = [
        Item(p, Match(p.id, 1.0, [Hit("diffusion", "title"), Hit("<img src=x>", "abstract")]))
        for p in hostile_papers()
    ]
    rendered = render_digest(
        make_environment(settings), settings, "r@example.org", items, EDITION, "k", keywords
    )
    return rendered, build_message(settings, "r@example.org", rendered).as_bytes()


def test_hostile_fields_render_escaped() -> None:
    rendered, _ = render_hostile('"><script>alert(3)</script>, diffusion')
    html = rendered.html
    assert "<script" not in html and "<img" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;" in html and "onerror=alert(1)&gt;" in html
    assert "javascript:" not in html and "data:text" not in html
    assert 'href="https://example.org/a.pdf' not in html  # a URL with a quote is dropped
    assert "X-Evil" not in html  # a URL with CRLF is dropped
    assert "\u202e" not in html and "\x00" not in html and "\ud800" not in html
    assert "\x00" not in rendered.text and "\u202e" not in rendered.text
    assert RTL in html and "👩\u200d🔬" in html and RTL in rendered.text


def test_hostile_html_passes_strict_html5_parser() -> None:
    rendered, _ = render_hostile()
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(rendered.html)
    assert parser.errors == []


def test_hostile_input_is_bounded_in_size_and_time() -> None:
    start = time.perf_counter()
    rendered, data = render_hostile()
    elapsed = time.perf_counter() - start
    assert len(data) <= MESSAGE_LIMIT
    assert rendered.shown == 4  # all four fit: every field is cut to a readable size
    assert "Author Number 0 &lt;x@y&gt;, Author Number 1" in rendered.html
    assert "... +4997" in rendered.text
    assert len(rendered.text) < 20_000
    assert elapsed < 30  # generous: a quadratic path over 1 MB would take far longer


def test_hostile_input_never_injects_a_header() -> None:
    _, data = render_hostile("diffusion\r\nBcc: victim@example.org")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert set(msg.keys()) == EXPECTED_HEADERS
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


text_fields = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("<>&\"'\r\n$\\{}"),
    max_size=300,
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=text_fields,
    abstract=text_fields,
    author=text_fields,
    term=text_fields,
    profile=text_fields,
)
def test_any_text_gives_a_valid_message(
    title: str, abstract: str, author: str, term: str, profile: str
) -> None:
    settings = make_settings()
    paper = Paper(seq=1, id="p", title=title, abstract=abstract, authors=[author, author])
    items = [Item(paper, Match("p", 1.0, [Hit(term or "x", "title")]))]
    rendered = render_digest(
        make_environment(settings), settings, "r@example.org", items, EDITION, "k", profile
    )
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(rendered.html)
    assert parser.errors == []
    msg = email.message_from_bytes(
        build_message(settings, "r@example.org", rendered).as_bytes(), policy=email.policy.default
    )
    assert set(msg.keys()) == EXPECTED_HEADERS
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
