"""Rendering: a subscriber's matched papers -> subject, HTML and plain text, and the
MIME message that carries them.

Templates come from `DIGEST_TEMPLATES_DIR` first (a designer's overrides, file by
file), then from the templates shipped with the package.
"""

from __future__ import annotations

import email.policy
import email.utils
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import premailer
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest.config import Settings
from digest.matching import Match
from digest.models import Paper
from digest.tokens import make_token


def packaged_templates_dir() -> Path:
    """`digest/templates` in a wheel; the repository's `templates/` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("digest templates are missing from this installation")


def make_environment(settings: Settings) -> Environment:
    loaders = []
    if settings.templates_dir is not None:
        loaders.append(FileSystemLoader(str(settings.templates_dir)))
    loaders.append(FileSystemLoader(str(packaged_templates_dir())))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html", "htm", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


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


def subscriber_links(settings: Settings, email_addr: str, digest_key: str | None) -> dict[str, str]:
    """Every link an email carries, built on DIGEST_BASE_URL with signed tokens."""
    base = settings.base_url
    links = {
        "unsubscribe": f"{base}/unsubscribe/{make_token(settings.secret_key, 'unsubscribe', email_addr)}",
        "manage": f"{base}/manage/{make_token(settings.secret_key, 'manage', email_addr)}",
    }
    if digest_key:
        links["view"] = f"{base}/view/{make_token(settings.secret_key, 'view', digest_key)}"
    return links


def make_subject(settings: Settings, items: Sequence[Item], edition: date) -> str:
    topics = []
    for item in items:
        for term in item.match.terms() if item.match else []:
            if term not in topics:
                topics.append(term)
    topic_text = ", ".join(topics[:3]) or "today's papers"
    subject = settings.subject_template.format(
        count=len(items), topics=topic_text, date=edition.strftime("%d %b").lstrip("0")
    )
    if len(items) == 1:
        subject = subject.replace("1 new papers", "1 new paper")
    return " ".join(subject.split())[:200]


def render_digest(
    env: Environment,
    settings: Settings,
    email_addr: str,
    items: Sequence[Item],
    edition: date,
    digest_key: str | None = None,
    profile: str = "",
) -> RenderedDigest:
    links = subscriber_links(settings, email_addr, digest_key)
    context: dict[str, Any] = {
        "items": items,
        "edition": edition,
        "email": email_addr,
        "profile": profile,
        "links": links,
        "base_url": settings.base_url,
    }
    html = env.get_template("digest.html").render(context)
    html = premailer.transform(html, keep_style_tags=True, disable_validation=True)
    text = env.get_template("digest.txt").render(context)
    return RenderedDigest(make_subject(settings, items, edition), html, text, links)


def build_message(
    settings: Settings, to_addr: str, rendered: RenderedDigest, message_id: str | None = None
) -> EmailMessage:
    """A multipart/alternative message; header values are folded and checked by the
    `email` package, and none of them carries user text except the address."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = settings.from_address
    msg["To"] = to_addr
    msg["Subject"] = rendered.subject.replace("\r", " ").replace("\n", " ")
    msg["Date"] = email.utils.formatdate(localtime=False)
    domain = settings.from_address.rsplit("@", 1)[-1].strip("> ")
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain=domain)
    msg["List-Id"] = f"Paper digest <digest.{domain}>"
    if "unsubscribe" in rendered.links:
        msg["List-Unsubscribe"] = f"<{rendered.links['unsubscribe']}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg
