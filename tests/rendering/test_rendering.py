"""Rendering: golden HTML and text for a fixed set of papers, the readable-text
helpers, templates a designer overrides file by file, and errors that name the file
and line."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import html5lib
import pytest
import time_machine
from conftest import REPO

from digest.config import Settings
from digest.errors import DigestError
from digest.matching import Hit, Match
from digest.models import Paper
from digest.rendering import Item, make_environment, make_subject, render_digest
from digest.rendering.text import cut_summary, latex_to_text, shorten_authors

GOLDEN = Path(__file__).resolve().parent / "golden"
EDITION = date(2026, 11, 24)
FROZEN = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def make_settings(**changes: object) -> Settings:
    base = {
        "base_url": "https://digest.example.org",
        "secret_key": "test-secret",
        "from_address": "Paper Digest <digest@example.org>",
    }
    return Settings(**{**base, **changes})


def golden_items() -> list[Item]:
    items = []
    for raw in json.loads((GOLDEN / "papers.json").read_text()):
        hits = [Hit(term, field, topic) for term, field, topic in raw.pop("hits")]
        raw["published"] = date.fromisoformat(raw["published"]) if raw["published"] else None
        paper = Paper(seq=len(items) + 1, **raw)
        items.append(Item(paper, Match(paper.id, 1.0, hits)))
    return items


def render_golden(settings: Settings | None = None):
    settings = settings or make_settings()
    with time_machine.travel(FROZEN, tick=False):
        return render_digest(
            make_environment(settings),
            settings,
            "reader@example.org",
            golden_items(),
            EDITION,
            "7:2026-11-24",
            'diffusion, "robot learning", "language model"',
        )


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("DIGEST_UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs; DIGEST_UPDATE_GOLDEN=1 rewrites it after review"


def test_golden_html() -> None:
    check_golden("digest.html", render_golden().html)


def test_golden_text() -> None:
    check_golden("digest.txt", render_golden().text)


def test_html_passes_strict_html5_parser() -> None:
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(render_golden().html)
    assert parser.errors == []


def test_card_shows_what_a_reader_needs() -> None:
    rendered = render_golden()
    html, text = rendered.html, rendered.text
    # linked title: the Hugging Face page when known, else the abstract page
    assert 'href="https://huggingface.co/papers/2411.00001"' in html
    assert 'href="https://arxiv.org/abs/2411.00002"' in html
    # LaTeX readable, in both parts
    assert "α-Diffusion" in text and "O(n²)" in text and "TÜLU" in text
    assert "$" not in text.split("----")[0]
    # authors shortened, upvotes, categories, date
    assert "Ada Lovelace, Alan Turing, Grace Hopper ... +12" in text
    assert "42 upvotes" in text and "cs.RO, cs.LG" in text and "23 Nov 2026" in text
    # matched terms highlighted; the why line
    assert ">Diffusion</mark>" in html
    assert "matched: diffusion, robot learning" in text
    # the AI summary wins over the abstract; links to PDF, code, project page
    assert "A diffusion policy for robot learning" in text
    for label in ("PDF", "Code", "Project page"):
        assert f">{label}</a>" in html and f"   {label}: https://" in text
    # a javascript: URL is never a link
    assert "javascript:" not in html.split("<body")[1].replace("javascript:alert(1).", "")
    # footer: why, manage, unsubscribe, view in browser
    for path in ("/unsubscribe/", "/manage/", "/view/"):
        assert f"https://digest.example.org{path}" in html
        assert f"https://digest.example.org{path}" in text
    assert "reader@example.org subscribed" in html and "reader@example.org subscribed" in text


def test_css_is_inlined_and_media_queries_kept() -> None:
    html = render_golden().html
    assert 'class="card-cell" style="' in html
    assert '<mark class="hl" style="background-color' in html
    head = html.split("</head>")[0]
    assert "@media (prefers-color-scheme: dark)" in head and "max-width: 480px" in head
    assert '<html lang="en">' in html


def test_text_part_is_written_for_reading() -> None:
    text = render_golden().text
    assert "<table" not in text and "<a " not in text and "&amp;" not in text
    assert "Cheap <b>Bold</b> Claims & Careful" in text  # plain text is not escaped
    assert max(len(line) for line in text.splitlines() if "http" not in line) <= 100
    assert text.startswith("PAPER DIGEST - Tuesday 24 November 2026\n3 new papers for you")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (r"$\alpha$-divergence", "α-divergence"),
        (r"Erd\H{o}s and na\"ive T\"ULU", "Erdős and naïve TÜLU"),
        (r"$x^{2} + y_{1} \leq \frac{1}{2}$", "x² + y₁ ≤ 1/2"),
        (r"50\% of $\mathcal{O}(n \log n)$", "50% of O(n log n)"),
        (r"\textbf{Bold} {BERT} \unknowncommand", "Bold BERT unknowncommand"),
        ("no latex at all, $5 and $6", "no latex at all, 5 and 6"),
    ],
)
def test_latex_to_text(source: str, expected: str) -> None:
    assert latex_to_text(source) == expected


def test_authors_shortened() -> None:
    assert shorten_authors(["A", "B"]) == "A, B"
    assert shorten_authors([f"N{i}" for i in range(15)]) == "N0, N1, N2 ... +12"
    assert shorten_authors(["x" * 500]).endswith("…") and len(shorten_authors(["x" * 500])) < 90


def test_summary_cut_at_a_sentence_boundary() -> None:
    text = ("This is sentence one, which is long enough to count as a start. " * 3) + (
        "Then e.g. an abbreviation follows and the text goes on and on " * 10
    )
    cut = cut_summary(text, limit=300)
    assert cut.endswith("start.") and len(cut) <= 300
    assert cut_summary("word " * 200, limit=100).endswith("…")


def test_subject_says_what_is_inside() -> None:
    items = golden_items()
    subject = make_subject(make_settings(), items, EDITION)
    assert subject == "3 new papers: diffusion, robot learning, language model - 24 Nov"
    assert make_subject(make_settings(), items[:1], EDITION).startswith("1 new paper: ")
    custom = make_settings(subject_template="[digest] {date}: {count} ({topics})")
    assert make_subject(custom, items, EDITION).startswith("[digest] 24 Nov: 3 (diffusion")
    with pytest.raises(DigestError, match="DIGEST_SUBJECT_TEMPLATE"):
        make_subject(make_settings(subject_template="{nope}"), items, EDITION)


def test_designer_overrides_one_partial(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "footer.html").write_text(
        '<p class="footer-note">Sent by the lab. <a href="{{ links.unsubscribe }}">Leave</a></p>\n'
    )
    (tmp_path / "email.css").write_text(
        (REPO / "templates" / "email.css").read_text() + "\n.footer-note { color: #7c2d12; }\n"
    )
    html = render_golden(make_settings(templates_dir=tmp_path)).html
    assert "Sent by the lab." in html and "Manage preferences" not in html
    assert 'class="footer-note" style="color:#7c2d12"' in html
    assert ">Diffusion</mark>" in html  # everything else still comes from the package


def test_template_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "card.html").write_text(
        "<table>\n<tr><td>\n{% if paper.title %}\n{{ paper.title }\n</td></tr>\n</table>\n"
    )
    with pytest.raises(DigestError) as info:
        render_golden(make_settings(templates_dir=tmp_path))
    message = str(info.value)
    assert "partials/card.html" in message and "line 4" in message


def test_template_runtime_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "header.html").write_text(
        "<h1>Digest</h1>\n<p>{{ total }}</p>\n<p>{{ no_such_value.field }}</p>\n"
    )
    with pytest.raises(DigestError) as info:
        render_golden(make_settings(templates_dir=tmp_path))
    message = str(info.value)
    assert "header.html" in message and "line 3" in message and "no_such_value" in message


def test_missing_templates_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DigestError, match="DIGEST_TEMPLATES_DIR: .* is not a folder"):
        make_environment(make_settings(templates_dir=tmp_path / "nope"))


def test_one_upvote_is_singular_in_both_parts() -> None:
    settings = Settings(base_url="https://digest.example.org", secret_key="k")
    paper = Paper(seq=1, id="2411.00001", title="One vote", abstract="A.", upvotes=1)
    rendered = render_digest(
        make_environment(settings),
        settings,
        "r@example.org",
        [Item(paper, Match(paper.id, 1.0, [Hit("vote", "title")]))],
        date(2026, 11, 24),
    )
    for part in (rendered.text, rendered.html):
        assert "1 upvote" in part and "1 upvotes" not in part


def test_render_without_a_digest_key_has_no_view_link() -> None:
    # render_digest(digest_key=None) used to fail in the templates on `links.view`.
    settings = Settings(base_url="https://digest.example.org", secret_key="k")
    papers = [
        Paper(seq=i, id=f"2411.{i:05d}", title=f"P {i}", abstract="A." * 9000) for i in range(60)
    ]
    rendered = render_digest(
        make_environment(settings),
        settings,
        "r@example.org",
        [Item(p, Match(p.id, 1.0, [])) for p in papers],
        date(2026, 11, 24),
    )
    assert "/view/" not in rendered.html and "/view/" not in rendered.text
    assert "View in" not in rendered.html
    assert rendered.shown < rendered.total == 60
    assert "/manage/" in rendered.html.split("more papers")[0].rsplit("href=", 1)[-1]
