"""One edition's renderer: the object a pipeline (or each worker process of one)
creates once and hands every subscriber of the edition to.

    renderer = EditionRenderer(settings)      # once per edition, or per worker process
    for sub, items in chunk:                  # items: [Item(paper, match), ...]
        rendered, msg = renderer.build(sub.email, items, edition_date,
                                       digest_key=f"{sub.id}:{edition}", profile=sub.keywords)
        msg.as_bytes(); msg["Message-ID"]; rendered.subject

It holds the templates (CSS inlined once) and the run's caches: per paper, its text
analysed and its card as a pattern; the cards subscribers with the same terms share;
the encoded lines messages share. Every cache is bounded (papers_limit, cards_limit,
the codecs' limits), so memory follows the papers of the edition, not how many
subscribers pass through it; keep one renderer for many chunks rather than building
one per chunk (what it learns per paper costs a few card renders).

Pickling sends only the settings: a process-pool worker rebuilds the templates and
starts with empty caches (`pickle.loads(pickle.dumps(renderer))` works, and so does
building one in the worker's initializer).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from digest.config import Settings
from digest.rendering.compose import MESSAGE_LIMIT, Item, RenderedDigest, render_digest
from digest.rendering.environment import DigestEnvironment, make_environment
from digest.rendering.message import OutgoingMessage, build_message


class EditionRenderer:
    """Subject, HTML, text and MIME message for each subscriber of one edition."""

    def __init__(self, settings: Settings, env: DigestEnvironment | None = None) -> None:
        self.settings = settings
        self.env = env if env is not None else make_environment(settings)

    def render(
        self,
        email_addr: str,
        items: Sequence[Item],
        edition: date,
        digest_key: str | None = None,
        profile: str = "",
        size_limit: int | None = MESSAGE_LIMIT,
        token_version: int | None = None,
    ) -> RenderedDigest:
        """`render_digest` with this edition's templates and caches (`token_version`:
        the cards get their subscriber's feedback links)."""
        return render_digest(
            self.env,
            self.settings,
            email_addr,
            items,
            edition,
            digest_key,
            profile,
            size_limit,
            token_version=token_version,
        )

    def message(self, to_addr: str, rendered: RenderedDigest) -> OutgoingMessage:
        """The MIME bytes of `rendered` (`build_message`); raises InputError for an
        address a message cannot carry."""
        return build_message(self.settings, to_addr, rendered)

    def build(
        self,
        email_addr: str,
        items: Sequence[Item],
        edition: date,
        digest_key: str | None = None,
        profile: str = "",
    ) -> tuple[RenderedDigest, OutgoingMessage]:
        """Both at once: the digest as the mailbox shows it and its message."""
        rendered = self.render(email_addr, items, edition, digest_key, profile)
        return rendered, self.message(email_addr, rendered)

    def __reduce__(self) -> tuple[Any, ...]:
        return (EditionRenderer, (self.settings,))
