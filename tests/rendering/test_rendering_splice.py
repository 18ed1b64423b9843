"""Cards spliced from per-paper patterns are byte for byte the cards the templates
render directly: for thousands of realistic profiles (bench/workload.py, matched by
the real matcher), for hostile papers (HTML, CRLF, huge fields), and for designer
templates, including ones a pattern cannot express (they fall back to rendering)."""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path

import pytest
from test_rendering import make_settings
from test_rendering_hostile import hostile_papers

from digest.matching import Hit, Match, Weights, profile_from_input, rank
from digest.models import Paper
from digest.rendering import (
    EditionRenderer,
    Item,
    build_message,
    make_environment,
    render_digest,
)
from digest.rendering.cards import make_card, paper_card, render_card
from digest.rendering.environment import DigestEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import workload  # noqa: E402

EDITION = date(2026, 11, 24)
_BOUNDARY_RE = re.compile(rb"=_digest_[0-9a-f]+")


def realistic_digests(n: int, m: int, extra: list[Paper]) -> list[tuple[str, list[Item]]]:
    corpus = workload.load_corpus()
    papers = workload.make_papers(corpus, m, seed=11) + extra
    specs = list(workload.make_profiles(corpus, n, seed=11))
    specs += [
        workload.ProfileSpec("hostile1@example.org", 'script, alert, "img src", diffusion*', 50),
        workload.ProfileSpec("hostile2@example.org", 'author:"Author Number 4999", robots', 50),
        workload.ProfileSpec("hostile3@example.org", 'bcc, victim, html, author:"Eve"', 50),
    ]
    profiles = {
        k: profile_from_input(s.keywords, s.max_papers, s.min_score) for k, s in enumerate(specs)
    }
    results = rank(profiles, papers, Weights())
    by_id = {p.id: p for p in papers}
    return [
        (specs[k].email, [Item(by_id[m.paper_id], m) for m in results[k]])
        for k in range(len(specs))
        if results[k]
    ]


def message(env: DigestEnvironment, addr: str, items: list[Item], key: str) -> tuple:
    settings = env.settings
    rendered = render_digest(env, settings, addr, items, EDITION, key, "profile <b>&</b>")
    msg = build_message(
        settings, addr, rendered, "<m@example.org>", "Tue, 24 Nov 2026 07:00:00 GMT"
    )
    return (
        rendered.subject,
        rendered.html,
        rendered.text,
        rendered.html_body,
        rendered.text_body,
        _BOUNDARY_RE.sub(b"B", msg.as_bytes()),
    )


def same_messages(fast: DigestEnvironment, slow: DigestEnvironment, addr: str, items, key) -> bool:
    """The links carry signed tokens stamped to the second: a pair rendered across a
    second boundary differs there, so such a pair is rendered again."""
    return any(message(fast, addr, items, key) == message(slow, addr, items, key) for _ in range(3))


def direct_env(settings) -> DigestEnvironment:
    env = make_environment(settings)
    env.splice_cards = False
    return env


def test_spliced_messages_equal_directly_rendered_ones_for_realistic_profiles() -> None:
    settings = make_settings()
    digests = realistic_digests(500, 300, hostile_papers())
    fast, slow = make_environment(settings), direct_env(settings)
    hostile_seen = 0
    for i, (addr, items) in enumerate(digests):
        hostile_seen += any(item.paper.id.startswith("h") for item in items)
        assert same_messages(fast, slow, addr, items, f"{i}:x"), addr
    assert len(digests) > 300 and hostile_seen >= 3
    # the fast path did splice: every paper shown got a pattern from the packaged templates
    states = list(fast.papers.values())
    assert states and all(s.spliced(fast, True) is not None for s in states)


def test_hostile_cards_equal_direct_ones_field_by_field() -> None:
    settings = make_settings()
    env, ref = make_environment(settings), make_environment(settings)
    hits = [
        [Hit("diffusion", "title"), Hit("<img src=x>", "abstract")],
        [Hit("diffusion*", "abstract"), Hit("Author Number 4999", "author")],
        [Hit("Eve", "author"), Hit("bcc", "title"), Hit("victim", "abstract")],
        [],
    ]
    for paper in hostile_papers():
        for h in hits:
            match = Match(paper.id, 1.0, h) if h else None
            terms = tuple(match.terms()) if match else ()
            assert make_card(env, paper, match, terms) == render_card(ref, paper, match)


def test_cards_of_one_paper_marked_differently_each_equal_their_direct_render() -> None:
    """A paper's unmarked pieces are filled once (cards.PlainFilled): a card that
    marks the title, one that marks nothing, one that marks an author, one that marks
    the summary, in either order, are each the card the templates render for it."""
    paper = workload.make_papers(workload.load_corpus(), 3, seed=1)[2]
    word = paper.title.split()[0]
    summary_word = max((paper.ai_summary or paper.abstract).split()[5:40], key=len)
    matches = [
        Match(paper.id, 1.0, [Hit(word, "title")]),
        Match(paper.id, 1.0, [Hit("zzzunfound", "abstract")]),
        Match(paper.id, 1.0, [Hit(str(paper.authors[-1]), "author")]),
        Match(paper.id, 1.0, [Hit(summary_word.strip(".,;:()"), "abstract")]),
        Match(paper.id, 1.0, [Hit(word, "title"), Hit(str(paper.authors[0]), "author")]),
        None,
    ]
    for order in (matches, matches[::-1]):
        env = make_environment(make_settings())
        for match in order:
            terms = tuple(match.terms()) if match else ()
            card = make_card(env, paper, match, terms)
            assert card == render_card(make_environment(make_settings()), paper, match)
    marked = make_card(env, paper, matches[0], (word,))
    assert '<mark class="hl"' in marked.html
    assert '<mark class="hl"' not in make_card(env, paper, matches[1], ("zzzunfound",)).html


CARD_LOOP_INDEX = """{% macro marked(parts) %}{% for part in parts %}{% if part.hit %}<b class="n{{ loop.index }}">{{ part.text }}</b>{% else %}{{ part.text }}{% endif %}{% endfor %}{% endmacro %}
<table><tr><td><h2>{{ marked(title_parts) }}</h2><p>{{ marked(author_parts) }}</p><p>{{ why }}</p><p>{{ marked(summary_parts) }}</p></td></tr></table>
"""
CARD_OTHER_MARK = """{% macro marked(parts) %}{% for part in parts %}{% if part.hit %}<strong class="hit">{{ part.text }}</strong>{% else %}{{ part.text }}{% endif %}{% endfor %}{% endmacro %}
<table><tr><td><h2>{{ marked(title_parts) }}</h2>{% if why %}<p>{{ why|upper }}</p>{% endif %}<p>{{ marked(summary_parts) }} / {{ marked(summary_parts) }}</p></td></tr></table>
"""
TEXT_UPPER = """{{ paper.title }}
{% for part in author_parts %}{{ part.text|upper }}{% endfor %}
{{ why }}
"""

# A text card that marks title and summary words too, its reason first (a hole at
# its start: filled whole, then stripped), and an HTML card written with CRLF line
# ends, its reason last before the closing tags.
TEXT_MARKS_WORDS = """{{ why }}
{% for part in title_parts %}{% if part.hit %}_{{ part.text }}_{% else %}{{ part.text }}{% endif %}{% endfor %}
{% for part in author_parts %}{% if part.hit %}*{{ part.text }}*{% else %}{{ part.text }}{% endif %}{% endfor %}
{% for part in summary_parts %}{% if part.hit %}_{{ part.text }}_{% else %}{{ part.text }}{% endif %}{% endfor %}
"""
CARD_CRLF = CARD_OTHER_MARK.replace("{{ why|upper }}", "{{ why }}").replace("\n", "\r\n")


@pytest.mark.parametrize(
    ("html", "text", "splices"),
    [
        (CARD_LOOP_INDEX, None, False),
        (CARD_OTHER_MARK, None, False),
        (None, TEXT_UPPER, False),
        (None, TEXT_MARKS_WORDS, True),
        (CARD_CRLF, TEXT_MARKS_WORDS, True),
    ],
)
def test_designer_templates_give_the_same_cards(tmp_path: Path, html, text, splices) -> None:
    (tmp_path / "partials").mkdir()
    if html:
        (tmp_path / "partials" / "card.html").write_text(html)
    if text:
        (tmp_path / "partials" / "card.txt").write_text(text)
    settings = make_settings(templates_dir=tmp_path)
    digests = realistic_digests(60, 80, hostile_papers())
    fast, slow = make_environment(settings), direct_env(settings)
    for i, (addr, items) in enumerate(digests):
        assert same_messages(fast, slow, addr, items, f"{i}:x"), addr
    states = list(fast.papers.values())
    if splices:
        assert all(s.spliced(fast, True) is not None for s in states)
    else:
        assert any(s.spliced(fast, True) is None for s in states)


def test_a_designer_mark_that_a_pattern_expresses_is_spliced(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    card = CARD_OTHER_MARK.replace("{{ why|upper }}", "{{ why }}")
    (tmp_path / "partials" / "card.html").write_text(card)
    settings = make_settings(templates_dir=tmp_path)
    env = make_environment(settings)
    paper = workload.make_papers(workload.load_corpus(), 3, seed=1)[2]
    match = Match(paper.id, 1.0, [Hit(paper.title.split()[0], "title")])
    spliced = make_card(env, paper, match, tuple(match.terms()))
    assert paper_card(env, paper).spliced(env, True) is not None
    assert spliced == render_card(make_environment(settings), paper, match)
    assert '<strong class="hit"' in spliced.html


def test_edition_renderer_pickles_to_a_fresh_one_with_the_same_output() -> None:
    import pickle

    settings = make_settings()
    renderer = EditionRenderer(settings)
    addr, items = realistic_digests(40, 60, [])[0]
    rendered, msg = renderer.build(addr, items, EDITION, "1:x", "p")
    again = pickle.loads(pickle.dumps(renderer))
    assert again is not renderer and not again.env.papers and renderer.env.papers
    unstamped = re.compile(r"/(view|manage|unsubscribe)/\S+")  # tokens carry the second
    text = again.render(addr, items, EDITION, "1:x", "p").text
    assert unstamped.sub("/token", text) == unstamped.sub("/token", rendered.text)
    assert msg["Message-ID"] and msg.as_bytes().startswith(b"From: ")


FOOTER_UPPER = """<p>You receive this because {{ email|upper }} subscribed.
{% if profile|length > 40 %}Long profile.{% else %}{{ profile }}{% endif %}</p>
<p><a href="{{ links.manage }}">Manage</a> <a href="{{ links.unsubscribe }}">Unsubscribe</a></p>
"""


def test_page_frames_are_patterns_and_match_direct_pages(tmp_path: Path) -> None:
    """The packaged page templates give a pattern for every shape; a designer footer
    that changes a value with a filter or tests its content is rendered directly,
    and both give the same bytes as rendering every page directly."""
    digests = realistic_digests(60, 80, hostile_papers())
    fast, slow = make_environment(make_settings()), direct_env(make_settings())
    for i, (addr, items) in enumerate(digests):
        assert same_messages(fast, slow, addr, items, f"{i}:x"), addr
    assert fast.frames and all(p is not None for p in fast.frames.values())
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "footer.html").write_text(FOOTER_UPPER)
    settings = make_settings(templates_dir=tmp_path)
    fast, slow = make_environment(settings), direct_env(settings)
    for i, (addr, items) in enumerate(digests[:20]):
        assert same_messages(fast, slow, addr, items, f"{i}:x"), addr
    assert any(p is None for k, p in fast.frames.items() if k[1] == "digest.html")
