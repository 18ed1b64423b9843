"""One paper as the digest shows it.

Per run and paper, once (`PaperCard`): its fields made readable, its title and
summary analysed into words, its authors' names analysed, and its card templates
rendered into a `CardPattern` (splice.py), filled once with no marks (`Spliced`).
Per subscriber: the spans of their terms looked up (each term once per paper, in
title and summary at once), and their reason and the fields their terms mark filled
in; the finished card is also kept per (paper, terms, reason), since subscribers
with the same terms share it. A paper whose templates give no usable
pattern has its card rendered directly (`render_card`), as every card once was."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from digest.matching import Match
from digest.matching.highlight import AuthorNames, TextPair, TextSpans, labels_of
from digest.models import Paper
from digest.rendering.encoding import normalise_newlines, references_hold
from digest.rendering.environment import DigestEnvironment, describe_render_error, load_template
from digest.rendering.highlight import (
    Part,
    author_parts,
    author_parts_marked,
    highlight_parts,
    parts_at,
)
from digest.rendering.splice import (
    PARTS_FIELDS,
    WHY,
    CardPattern,
    EscapedText,
    Hole,
    Marks,
    PlainFilled,
    Values,
    probe_context,
)
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
# Papers whose card patterns are checked against a direct render with sample values
# before the templates are trusted to treat every value the way a pattern does.
CARD_CHECKS = 8
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


def card_text(text: str) -> str:
    """Rendered card text (stripped of its blank lines around) as it is spliced into
    a page: its first line shares a line with the page (`1. `), it ends with a newline."""
    text = normalise_newlines(text)
    return text if text.endswith("\n") else text + "\n"


@dataclass(frozen=True)
class Card:
    """A paper's rendered HTML and text, ready to splice (both are sent as they are:
    `encoding.seven_bit`, `encoding.eight_bit`); what they add to the encoded message
    (for the size budget); and whether the HTML's non-ASCII characters may be sent as
    character references (`encoding.references_hold`)."""

    html: str
    text: str
    cost: int
    refs: bool = True


def view_of(env: DigestEnvironment, paper: Paper) -> PaperView:
    return paper_card(env, paper).view


class MarkedText(Marks):
    """A title or summary with the spans a subscriber's terms cover."""

    __slots__ = ("source", "spans")

    def __init__(self, source: EscapedText, spans: tuple[tuple[int, int], ...]) -> None:
        self.source, self.spans = source, spans

    def parts(self) -> list[Part]:
        return parts_at(self.source.text, self.spans)

    def render(self, hole: Hole) -> str:
        return self.source.render(self.spans, hole)


class MarkedAuthors(Marks):
    """A paper's author line with the followed authors marked; rendered once per
    (paper, marked names, hole), since most subscribers mark none."""

    __slots__ = ("card", "named")

    def __init__(self, card: PaperCard, named: tuple[int, ...]) -> None:
        self.card, self.named = card, named

    def parts(self) -> list[Part]:
        parts = self.card.author_lines.get(self.named)
        if parts is None:
            parts = author_parts_marked(self.card.paper.authors, set(self.named))
            self.card.author_lines[self.named] = parts
        return parts

    def render(self, hole: Hole) -> str:
        key = (self.named, hole.hit_open, hole.hit_close, hole.escaped)  # a Hole hashes slowly
        shown = self.card.author_lines.get(key)
        if shown is None:
            shown = self.card.author_lines[key] = hole.fill(self.parts())
        return shown


@dataclass(frozen=True, slots=True)
class Spliced:
    """How a paper's cards are spliced: its (HTML, text) patterns; each stripped as a
    card is spliced and filled with the unmarked values (`PlainFilled`; None when an
    end is a hole: filled whole, stripped after); whether the HTML's non-ASCII
    characters may be sent as references (`encoding.references_hold`)."""

    patterns: tuple[CardPattern, CardPattern]
    html: PlainFilled | None
    text: PlainFilled | None
    refs: bool


class PaperCard:
    """What one run knows about a paper, whoever it is shown to: its fields made
    readable, its title and summary analysed (and escaped) once, its authors'
    names analysed, its card as patterns learned from the templates."""

    __slots__ = (
        "paper", "view", "texts", "authors", "author_lines",
        "_title_text", "_summary_text", "_spliced",
    )  # fmt: skip

    def __init__(self, paper: Paper) -> None:
        self.paper = paper
        self.view = paper_view(paper)
        self.texts = TextPair(self.view.title, self.view.summary)
        self.authors = AuthorNames(paper.authors)
        self.author_lines: dict[Any, Any] = {}
        self._title_text = EscapedText(self.view.title)
        self._summary_text = EscapedText(self.view.summary)
        self._spliced: dict[bool, Spliced | None] = {}

    def marks(
        self, match: Match | None
    ) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...], tuple[tuple[int, int], ...]]:
        """What a subscriber's match marks on the card, from cached spans: the spans
        of the title, the positions of the followed authors, the spans of the summary."""
        labels, authors = labels_of(match)
        title, summary = self.texts.spans(labels) if labels else ((), ())
        return title, tuple(self.authors.named(authors)) if authors else (), summary

    def values(
        self,
        why: str,
        title: tuple[tuple[int, int], ...],
        named: tuple[int, ...],
        summary: tuple[tuple[int, int], ...],
    ) -> dict[str, Any]:
        """The subscriber-dependent part of the card's context."""
        return {
            WHY: why,
            "title_parts": MarkedText(self._title_text, title),
            # the followed author is always on the line, marked, however long the list
            "author_parts": MarkedAuthors(self, named),
            "summary_parts": MarkedText(self._summary_text, summary),
        }

    def spliced(self, env: DigestEnvironment, with_why: bool) -> Spliced | None:
        """How this paper's cards are spliced (learned on first use); None when its
        patterns cannot reproduce its card."""
        try:
            return self._spliced[with_why]
        except KeyError:
            pass
        learned = self._learn(env, with_why)
        spliced = None
        if learned is not None:
            patterns, refs = learned
            html, text = patterns[0].framed("\n", None), patterns[1].framed("", "\n")
            plain = self.values("", (), (), ())
            spliced = Spliced(
                patterns,
                PlainFilled(html, plain) if html is not None else None,
                PlainFilled(text, plain) if text is not None else None,
                refs,
            )
        self._spliced[with_why] = spliced
        return spliced

    def _learn(
        self, env: DigestEnvironment, with_why: bool
    ) -> tuple[tuple[CardPattern, CardPattern], bool] | None:
        """The (HTML, text) patterns and whether the HTML's non-ASCII characters may
        be sent as references; None when the patterns cannot reproduce the card."""
        html, text = _render_both(env, {"paper": self.view, **probe_context(with_why)})
        html_pattern, text_pattern = CardPattern.learn(html), CardPattern.learn(text)
        if html_pattern is None or text_pattern is None:
            return None
        learned = (html_pattern, text_pattern), references_hold(html)
        checks = env.card_checks
        if checks.get(with_why, 0) >= CARD_CHECKS:
            return learned
        sample = self._sample(with_why)
        if (html_pattern.fill(sample), text_pattern.fill(sample)) != _render_both(
            env, {"paper": self.view, **_as_parts(sample)}
        ):
            # the templates treat a value in a way a pattern does not: from now on
            # every paper's pattern is checked (and this one is rendered directly)
            checks[with_why] = -(10**9)
            return None
        checks[with_why] = checks.get(with_why, 0) + 1
        return learned

    def _sample(self, with_why: bool) -> dict[str, Any]:
        """Values with marked pieces in every field (and text to escape), to check a
        pattern against the template itself."""

        def marked(source: EscapedText, spans: TextSpans) -> MarkedText:
            words = spans.words
            picks = [words[0], words[-1]] if len(words) > 2 else words[:1]
            return MarkedText(source, tuple(sorted({(s, e) for _, s, e in picks})))

        return {
            WHY: 'matched: <sample> & "check"' if with_why else "",
            "title_parts": marked(self._title_text, self.texts.first),
            "author_parts": MarkedAuthors(self, (0, len(self.paper.authors) - 1)),
            "summary_parts": marked(self._summary_text, self.texts.second),
        }


def paper_card(env: DigestEnvironment, paper: Paper) -> PaperCard:
    return env.paper_state((paper.id, paper.updated_at), lambda: PaperCard(paper))


def make_card(
    env: DigestEnvironment, paper: Paper, match: Match | None, terms: tuple[str, ...]
) -> Card:
    if not env.splice_cards:
        return render_card(env, paper, match)
    why = match.why() if match else ""
    # the paper's key read once (a Paper's fields are SQLAlchemy descriptors)
    ident = (paper.id, paper.updated_at)
    key = (ident, terms, why)
    card = env.cards.get(key)
    if card is None:
        card = env.remember(key, lambda: _spliced_card(env, paper, match, why, ident))
    return card


def _spliced_card(
    env: DigestEnvironment, paper: Paper, match: Match | None, why: str, ident: Any
) -> Card:
    state = env.paper_state(ident, lambda: PaperCard(paper))
    reason = _reason(env, why)
    with_why = bool(reason)
    title, named, summary = state.marks(match)
    spliced = state.spliced(env, with_why)
    if spliced is None:
        values = state.values(reason, title, named, summary)
        return _card(*_render_both(env, {"paper": state.view, **_as_parts(values)}))
    patterns, html_plain, text_plain = spliced.patterns, spliced.html, spliced.text
    marks: dict[str, Marks] = {}
    if title:
        marks[_TITLE] = MarkedText(state._title_text, title)
    if named:
        marks[_AUTHORS] = MarkedAuthors(state, named)
    if summary:
        marks[_SUMMARY] = MarkedText(state._summary_text, summary)
    # no framed pattern, or a carriage return to normalise: strip after filling
    html = html_plain.fill(reason, marks) if html_plain is not None else ""
    if not html or "\r" in html:
        values = state.values(reason, title, named, summary)
        html = card_html(patterns[0].fill(values))
    text = text_plain.fill(reason, marks) if text_plain is not None else ""
    if not text or "\r" in text:
        values = state.values(reason, title, named, summary)
        text = card_text(patterns[1].fill(values).strip("\n"))
    return _made(html, text, spliced.refs)


_TITLE, _AUTHORS, _SUMMARY = PARTS_FIELDS.values()


def _reason(env: DigestEnvironment, why: str) -> str:
    """`why` made safe to show and bounded, once per distinct reason in a run."""
    reasons = env.reasons
    shown = reasons.get(why)
    if shown is None:
        if len(reasons) >= env.papers_limit:
            reasons.clear()
        shown = reasons[why] = shorten(clean(why, WHY_LIMIT * 2), WHY_LIMIT)
    return shown


def _as_parts(values: Values) -> dict[str, Any]:
    """`values` with part lists, as the templates take them."""
    return {k: v.parts() if isinstance(v, Marks) else v for k, v in values.items()}


def render_card(env: DigestEnvironment, paper: Paper, match: Match | None) -> Card:
    """The card rendered straight from the templates, nothing precomputed: the
    reference the spliced cards must equal byte for byte."""
    view = paper_view(paper)
    why = match.why() if match else ""
    context = {
        "paper": view,
        "why": shorten(clean(why, WHY_LIMIT * 2), WHY_LIMIT),
        "title_parts": highlight_parts(view.title, match),
        "author_parts": author_parts(paper.authors, match),
        "summary_parts": highlight_parts(view.summary, match),
    }
    return _card(*_render_both(env, context))


def _render_both(env: DigestEnvironment, context: dict[str, Any]) -> tuple[str, str]:
    """The card's HTML and text templates rendered with `context`, unstripped."""
    try:
        html = load_template(env, "partials/card.html").render(context)
        text = load_template(env, "partials/card.txt").render(context)
    except Exception as exc:  # any error inside a template: name the file and line
        if type(exc).__module__.startswith("digest"):
            raise
        raise describe_render_error(exc, "partials/card") from None
    return html, text


def card_html(html: str) -> str:
    """Rendered card HTML as it is spliced into a page: on lines of its own."""
    return f"\n{normalise_newlines(html).strip()}\n"


def _card(html: str, text: str) -> Card:
    shown = card_html(html)
    return _made(shown, card_text(text.strip("\n")), references_hold(shown))


def _made(html: str, text: str, refs: bool) -> Card:
    # what the card adds to the message, for the size budget: both parts are sent as
    # they are, mostly ASCII (a character a byte)
    return Card(html, text, len(html) + len(text) + 80, refs)
