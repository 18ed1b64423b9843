"""A subscriber's matched papers -> subject, HTML and plain text, within the size a
mailbox shows without clipping (Gmail clips past ~102 kB)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from typing import Any

from digest.config import Settings
from digest.errors import InputError
from digest.matching import Hit, Match, readable_terms
from digest.matching.readable import TermAnalysis
from digest.models import Paper
from digest.rendering.cards import Card, make_card, view_of
from digest.rendering.encoding import (
    eight_bit,
    encode_body,
    header_text,
    normalise_newlines,
    references_hold,
    seven_bit,
)
from digest.rendering.environment import DigestEnvironment, describe_render_error, load_template
from digest.rendering.frame import (
    FramePattern,
    Shape,
    card_markers,
    joined,
    learn_frame,
    slotted,
)
from digest.rendering.text import clean, shorten
from digest.tokens import (
    FeedbackSigner,
    make_mail_token,
    make_token,
    subscriber_payload,
    today_number,
)

MESSAGE_LIMIT = 100_000
HEADER_RESERVE = 3_000
SHELL_GUESS = 12_000
MAX_ITEMS = 500
# What a card's feedback links add to the encoded message (two URLs in HTML and text).
FEEDBACK_COST = 700


@dataclass
class Item:
    """One paper in a digest with the reason it is there."""

    paper: Paper
    match: Match | None = None


@dataclass
class RenderedDigest:
    subject: str
    html: str
    text: str
    links: dict[str, str] = field(default_factory=dict)
    shown: int = 0
    total: int = 0
    # whether the HTML's non-ASCII characters may be sent as character references
    # (none in a <style>, <script> or comment): then it goes 7bit (`html_body`)
    html_refs: bool = False

    @cached_property
    def text_body(self) -> tuple[str, bytes]:
        """The encoded text: as it is, 8bit (7bit when ASCII), when it can be
        (`encoding.eight_bit`: lines within 998 octets); else quoted-printable or
        base64, encoded whole."""
        return eight_bit(self.text) or encode_body(self.text)

    @cached_property
    def html_body(self) -> tuple[str, bytes]:
        """The encoded HTML: 7bit, non-ASCII as character references, when it can be
        (`encoding.seven_bit`: no encoding pass, and smaller than quoted-printable,
        which writes each `=` of the inline styles as `=3D`); else quoted-printable
        or base64 (for non-Latin scripts), encoded whole."""
        if self.html_refs:
            data = seven_bit(self.html)
            if data is not None:
                return "7bit", data
        return encode_body(self.html)

    def encoded_size(self) -> int:
        return len(self.text_body[1]) + len(self.html_body[1]) + HEADER_RESERVE


def subscriber_links(
    settings: Settings,
    email_addr: str,
    digest_key: str | None,
    subscriber_id: int | None = None,
) -> dict[str, str]:
    """Every link an email carries, built on DIGEST_BASE_URL with signed tokens. The
    manage and unsubscribe tokens name the subscriber's row (given, or read from the
    digest key `<id>:<edition>`), so they die with it."""
    base = settings.base_url
    secret = settings.secret_key
    if subscriber_id is None:
        subscriber_id = _digest_subscriber(digest_key)
    who = subscriber_payload(email_addr, subscriber_id)
    links = {
        "unsubscribe": f"{base}/unsubscribe/{make_token(secret, 'unsubscribe', who)}",
        "manage": f"{base}/manage/{make_token(secret, 'manage', who)}",
    }
    if digest_key:
        links["view"] = f"{base}/view/{make_token(secret, 'view', digest_key)}"
    if subscriber_id is not None:
        # Not a link: the token of the List-Unsubscribe mailto (`digest inbound`).
        links["mail_token"] = make_mail_token(secret, "unsubscribe-mail", subscriber_id)
    return links


def feedback_links(
    settings: Settings, subscriber_id: int, token_version: int, paper_ids: Sequence[str]
) -> list[dict[str, str]]:
    """Each card's "more like this" / "less like this" URLs: one signed token per
    (subscriber, paper), the vote in the query. A GET only shows a page with a button:
    link scanners that fetch every URL of a message record nothing."""
    signer = FeedbackSigner(settings.secret_key, subscriber_id, token_version, today_number())
    base = f"{settings.base_url}/feedback/"
    out = []
    for paper_id in paper_ids:
        url = base + signer.token(paper_id)
        out.append({"more": url + "?vote=more", "less": url + "?vote=less"})
    return out


def _digest_subscriber(digest_key: str | None) -> int | None:
    head = (digest_key or "").partition(":")[0]
    return int(head) if head.isdigit() else None


def topics_of(
    items: Sequence[Item], limit: int = 3, analysis: TermAnalysis | None = None
) -> list[str]:
    """The first `limit` distinct things the digest matched, in words a reader uses:
    topic titles, "agents" for `agent*`, "papers by Yann LeCun", never query syntax.
    `analysis` (the run's) keeps each paper's text analysed once for all digests."""
    found = [(i.match, i.paper) for i in items[:MAX_ITEMS] if i.match]
    return [_topic_text(t) for t in readable_terms(found, limit, analysis)]


@lru_cache(maxsize=4096)
def _topic_text(word: str) -> str:
    """A topic as the subject and page show it (the same few thousand words come up
    in every digest of an edition)."""
    return shorten(clean(word, 200), 60)


def make_subject(
    settings: Settings,
    items: Sequence[Item],
    edition: date,
    topics: Sequence[str] | None = None,
) -> str:
    """`7 new papers: diffusion, robot learning - 24 Nov` from DIGEST_SUBJECT_TEMPLATE
    (fields {count}, {topics}, {date}); one safe header line of at most 200 chars."""
    if topics is None:
        topics = topics_of(items)
    topic_text = ", ".join(topics[:3]) or "today's papers"
    try:
        subject = settings.subject_template.format(
            count=len(items), topics=topic_text, date=_short_date(edition)
        )
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise InputError(
            f"DIGEST_SUBJECT_TEMPLATE: use the fields {{count}}, {{topics}} and {{date}} ({exc})"
        ) from None
    if len(items) == 1:
        subject = subject.replace("1 new papers", "1 new paper")
    return header_text(subject, 200)


@lru_cache(maxsize=16)
def _date_label(edition: date) -> str:
    """`Monday 24 November 2026`: the same for every digest of an edition."""
    return f"{edition:%A} {edition.day} {edition:%B %Y}"


@lru_cache(maxsize=16)
def _short_date(edition: date) -> str:
    """`24 Nov`, the subject's {date}."""
    return f"{edition:%d %b}".lstrip("0")


def _render(env: DigestEnvironment, name: str, context: dict[str, Any]) -> str:
    template = load_template(env, name)
    try:
        return template.render(context)
    except Exception as exc:  # an error inside a template: name its file and line
        if type(exc).__module__.startswith("digest"):
            raise
        raise describe_render_error(exc, name) from None


def render_digest(
    env: DigestEnvironment,
    settings: Settings,
    email_addr: str,
    items: Sequence[Item],
    edition: date,
    digest_key: str | None = None,
    profile: str = "",
    size_limit: int | None = MESSAGE_LIMIT,
    token_version: int | None = None,
) -> RenderedDigest:
    """Cards come from the run's cache; as many as fit `size_limit` are shown, the
    rest are counted behind a link to the full digest in the browser (which renders
    with `size_limit=None`). With `token_version` (and a digest key naming the
    subscriber) every card gets its feedback links, put beside the cached card by
    the page template, so cards stay shared between subscribers."""
    limit = size_limit if size_limit is not None else float("inf")
    links = subscriber_links(settings, email_addr, digest_key)
    items = list(items)
    subscriber_id = _digest_subscriber(digest_key)
    rated = subscriber_id is not None and token_version is not None
    cards: list[Card] = []
    spent = SHELL_GUESS + HEADER_RESERVE
    extra = FEEDBACK_COST if rated else 0
    for item in items[:MAX_ITEMS]:  # the terms of the papers that fit, not of all
        match = item.match
        card = make_card(env, item.paper, match, match.term_tuple() if match else ())
        cost = card.cost + extra
        if spent + cost > limit:
            break
        cards.append(card)
        spent += cost
    feedback: list[dict[str, str] | None] = [None] * len(cards)
    if subscriber_id is not None and token_version is not None:
        ids = [item.paper.id for item in items[: len(cards)]]
        feedback = list(feedback_links(settings, subscriber_id, token_version, ids))
    topics = topics_of(items, 5, env.analysis)
    context: dict[str, Any] = {
        "edition": edition,
        "date_label": _date_label(edition),
        "email": header_text(email_addr, 320),
        "profile": shorten(clean(profile, 2000), 300),
        # Templates test `links.view`; with StrictUndefined a missing key would raise.
        "links": {"view": "", **links},
        "more_url": links.get("view") or links["manage"],
        "base_url": settings.base_url,
        "total": len(items),
        "topics": topics,
        "preheader": " · ".join(shorten(view_of(env, i.paper).title, 80) for i in items[:3]),
        "feedback": feedback,
    }
    subject = make_subject(settings, items, edition, topics)
    while True:
        rendered = _render_page(env, context, cards, subject, links, len(items))
        if size_limit is None or rendered.encoded_size() <= size_limit or not cards:
            return rendered
        cards = cards[:-1]


def _render_page(
    env: DigestEnvironment,
    context: dict[str, Any],
    cards: list[Card],
    subject: str,
    links: dict[str, str],
    total: int,
) -> RenderedDigest:
    """The page with a slot for each card, filled from the pattern of its shape
    (frame.py) or rendered directly; the cached cards (HTML and text) go in the
    slots. The shape is worked out once for both the HTML and the text."""
    page = {
        **context,
        "feedback": context["feedback"][: len(cards)],
        "cards": card_markers(len(cards)),
        "shown": len(cards),
        "more": total - len(cards),
    }
    shape = Shape(page) if env.splice_cards else None
    html, refs = _page(env, "digest.html", page, shape, [c.html for c in cards])
    text, _ = _page(env, "digest.txt", page, shape, [c.text for c in cards])
    return RenderedDigest(
        subject, html, text, links, len(cards), total, refs and all(c.refs for c in cards)
    )


def _page(
    env: DigestEnvironment,
    name: str,
    page: dict[str, Any],
    shape: Shape | None,
    cards: list[str],
) -> tuple[str, bool]:
    """The page's text, filled from its shape's pattern or rendered directly, and
    whether character references hold in it (the page's part: the cards say their
    own; only the HTML part uses it)."""
    pattern = _pattern(env, name, page, shape, cards) if shape is not None else None
    if shape is not None and pattern is not None:
        return pattern.text(shape.values, cards), pattern.refs
    rendered = _page_render(env, name, page)
    return joined(slotted(rendered, cards)), references_hold(rendered)


def _page_render(env: DigestEnvironment, name: str, context: Mapping[str, Any]) -> str:
    return normalise_newlines(_render(env, name, dict(context)))


def _pattern(
    env: DigestEnvironment,
    name: str,
    page: dict[str, Any],
    shape: Shape,
    cards: Sequence[str],
) -> FramePattern | None:
    """The pattern of the page's shape, when the templates give one. A template's
    first shape is checked against a direct render with the real values and with
    sample ones; later shapes with sample ones, until FRAME_CHECKS shapes passed
    (frame.learn_frame)."""
    key = ("frame", name, shape.key)
    pattern = env.frames.get(key, False)
    if pattern is False:
        if len(env.frames) >= env.frames_limit:
            env.frames.clear()
        checks = env.frame_checks.get(name, 0)
        pattern = env.frames[key] = learn_frame(
            lambda context: _page_render(env, name, context),
            page,
            shape,
            cards,
            checks,
        )
        # past FRAME_CHECKS shapes that passed, the template is trusted; once one
        # failed, every later shape is checked
        env.frame_checks[name] = checks + 1 if pattern is not None else -(10**9)
    return pattern if isinstance(pattern, FramePattern) else None


def items_from_outbox(
    papers: dict[str, Paper], paper_ids: Sequence[str], explanations: dict[str, Any]
) -> list[Item]:
    """The items of a stored digest (an outbox row's `paper_ids` and `explanations`),
    for rendering it again in full for the view-in-browser page."""
    items = []
    for paper_id in paper_ids:
        paper = papers.get(paper_id)
        if paper is None:
            continue
        raw = explanations.get(paper_id) or {}
        hits = [
            Hit(str(h.get("term", "")), str(h.get("field", "")), h.get("topic"))
            for h in raw.get("hits", [])
            if isinstance(h, dict)
        ]
        items.append(Item(paper, Match(paper_id, float(raw.get("score", 0.0)), hits)))
    return items
