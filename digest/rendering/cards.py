"""One paper as the digest shows it. Everything here is the same for every subscriber
whose match gives the same reason, so it is built once per run and reused: the paper's
prepared fields once per paper, its rendered card once per (paper, reason)."""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.matching import Match
from digest.models import Paper
from digest.rendering.encoding import normalise_newlines, quoted_printable
from digest.rendering.environment import DigestEnvironment, describe_render_error, load_template
from digest.rendering.highlight import author_parts, highlight_parts
from digest.rendering.text import (
    CATEGORY_LIMIT,
    TITLE_LIMIT,
    clean,
    cut_summary,
    readable,
    safe_url,
    shorten,
    shorten_authors,
)

MAX_CATEGORIES = 6
WHY_LIMIT = 300


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class PaperView:
    """A paper's fields made readable, escaped-ready and bounded in size."""

    id: str
    title: str
    url: str | None
    authors: str
    author_count: int
    published: str
    categories: list[str]
    upvotes: int | None
    summary: str
    summary_is_ai: bool
    links: list[Link] = field(default_factory=list)


def paper_view(paper: Paper) -> PaperView:
    hf_url, abs_url = safe_url(paper.hf_url), safe_url(paper.url)
    links = [
        Link(label, url)
        for label, url in (
            ("PDF", safe_url(paper.pdf_url)),
            ("Code", safe_url(paper.code_url)),
            ("Project page", safe_url(paper.project_url)),
            ("Abstract", abs_url if hf_url else None),
        )
        if url
    ]
    if paper.ai_summary and clean(paper.ai_summary):
        summary, is_ai = readable(paper.ai_summary), True
    else:
        summary, is_ai = readable(paper.abstract), False
    categories = [shorten(clean(c, 200), CATEGORY_LIMIT) for c in paper.categories[:MAX_CATEGORIES]]
    return PaperView(
        id=paper.id,
        title=shorten(readable(paper.title, TITLE_LIMIT * 4), TITLE_LIMIT) or "(untitled)",
        url=hf_url or abs_url,
        authors=shorten_authors(paper.authors),
        author_count=len(paper.authors),
        published=f"{paper.published:%d %b %Y}".lstrip("0") if paper.published else "",
        categories=[c for c in categories if c],
        upvotes=paper.upvotes if isinstance(paper.upvotes, int) and paper.upvotes > 0 else None,
        summary=cut_summary(summary),
        summary_is_ai=is_ai,
        links=links,
    )


@dataclass(frozen=True)
class CardSlot:
    """Rendered text to splice into a page, with most of it already encoded.

    Quoted-printable works line by line, so `rest` (which starts and ends with a
    newline) is encoded once and reused in any message; `head` (the text before the
    first newline) shares its line with the page around it and is encoded with it."""

    head: str
    rest: str
    rest_qp: bytes

    @classmethod
    def of(cls, text: str) -> CardSlot:
        text = normalise_newlines(text)
        cut = text.find("\n")
        head, rest = (text, "\n") if cut < 0 else (text[:cut], text[cut:])
        if not rest.endswith("\n"):
            rest += "\n"
        return cls(head, rest, quoted_printable(rest))

    @property
    def text(self) -> str:
        return self.head + self.rest


@dataclass(frozen=True)
class Card:
    """A paper's rendered HTML and text, ready to splice, and what they add to the
    encoded message (for the size budget)."""

    html: CardSlot
    text: CardSlot
    cost: int


def view_of(env: DigestEnvironment, paper: Paper) -> PaperView:
    return env.remember(("view", paper.id, paper.updated_at), lambda: paper_view(paper))


def make_card(
    env: DigestEnvironment, paper: Paper, match: Match | None, terms: tuple[str, ...]
) -> Card:
    why = match.why() if match else ""
    key = ("card", paper.id, paper.updated_at, terms, why)
    try:
        return env.cache[key]
    except KeyError:
        return env.remember(key, lambda: _render_card(env, paper, match, why))


def _render_card(env: DigestEnvironment, paper: Paper, match: Match | None, why: str) -> Card:
    view = view_of(env, paper)
    context = {
        "paper": view,
        "why": shorten(clean(why, WHY_LIMIT * 2), WHY_LIMIT),
        "title_parts": highlight_parts(view.title, match),
        # the followed author is always on the line, marked, however long the list
        "author_parts": author_parts(paper.authors, match),
        "summary_parts": highlight_parts(view.summary, match),
    }
    try:
        html = load_template(env, "partials/card.html").render(context).strip()
        text = load_template(env, "partials/card.txt").render(context).strip("\n")
    except Exception as exc:  # any error inside a template: name the file and line
        if type(exc).__module__.startswith("digest"):
            raise
        raise describe_render_error(exc, "partials/card") from None
    card_html, card_text = CardSlot.of(f"\n{html}\n"), CardSlot.of(text)
    return Card(card_html, card_text, len(card_html.rest_qp) + len(card_text.rest_qp) + 80)
