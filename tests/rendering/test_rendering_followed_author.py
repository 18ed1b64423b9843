"""A followed author is always on the card's author line, and marked, however long
the list (issue 16: `author:"Yann LeCun"` matched V-JEPA 2 and the card hid him)."""

from __future__ import annotations

import html
import re
from datetime import date

from digest.config import Settings
from digest.matching import Weights, compile_profile, match_all
from digest.models import Paper
from digest.rendering import Item, make_environment, render_digest

EDITION = date(2026, 11, 24)
AUTHORS = [f"Author Number{i:02d}" for i in range(1, 30)] + ["Yann LeCun"]


def _render(query: str, authors: list[str]):
    paper = Paper(
        id="2506.09985",
        title="V-JEPA 2: self-supervised video models",
        abstract="World models from video.",
        authors=authors,
        published=date(2026, 11, 23),
    )
    (match,) = match_all({0: compile_profile(query)}, [paper], None, Weights())[0]
    settings = Settings(base_url="https://digest.example.org", secret_key="test-secret")
    return render_digest(
        make_environment(settings), settings, "reader@example.org", [Item(paper, match)], EDITION
    )


def _author_line(page: str) -> str:
    metas = re.findall(r'<p class="meta" dir="auto"[^>]*>(.*?)</p>', page, re.S)
    assert metas, page
    return metas[0]


def test_the_followed_author_is_shown_and_marked_in_html_and_text() -> None:
    rendered = _render('author:"Yann LeCun"', AUTHORS)
    line = _author_line(rendered.html)
    plain = html.unescape(re.sub(r"<[^>]+>", "", line))
    assert plain == "Author Number01, Author Number02, Author Number03 ... Yann LeCun, +26"
    assert re.search(r"<mark[^>]*>Yann LeCun</mark>", line)
    assert "Author Number01, Author Number02, Author Number03 ... *Yann LeCun*, +26" in (
        rendered.text
    )


def test_a_followed_author_in_the_middle_and_no_author_term() -> None:
    middle = AUTHORS[:10] + ["Yann LeCun"] + AUTHORS[10:29]
    line = html.unescape(re.sub(r"<[^>]+>", "", _author_line(_render("author:lecun", middle).html)))
    assert line == "Author Number01, Author Number02, Author Number03 ... Yann LeCun ... +26"
    # no author term: the short line as before, nothing marked
    rendered = _render("video", AUTHORS)
    assert "<mark" not in _author_line(rendered.html)
    assert "Author Number01, Author Number02, Author Number03 ... +27" in rendered.text
