"""Rendering: a subscriber's matched papers -> subject, HTML and plain text, and the
MIME message that carries them.

- `environment`: templates from `DIGEST_TEMPLATES_DIR` over the packaged ones, CSS
  inlined once per template; errors name file and line.
- `text`, `highlight`, `filters`: fields made readable (LaTeX, authors, summaries),
  matched terms marked, everything escaped and bounded.
- `edition`: `EditionRenderer`, what a pipeline creates once per edition (or per
  worker process) and renders every subscriber with; its docstring shows how.
- `cards`, `splice`: per paper and run, its text analysed and its card rendered into
  a pattern once; a subscriber's highlights are filled in from precomputed spans.
- `compose`: the whole digest within the size limit; subject; signed links.
- `encoding`, `message`: MIME bytes and safe headers without `email.message`.
"""

from digest.rendering.compose import (
    MESSAGE_LIMIT,
    Item,
    RenderedDigest,
    items_from_outbox,
    make_subject,
    render_digest,
    subscriber_links,
)
from digest.rendering.edition import EditionRenderer
from digest.rendering.environment import (
    DigestEnvironment,
    TemplateProblem,
    make_environment,
    packaged_templates_dir,
    template_dirs,
)
from digest.rendering.message import OutgoingMessage, build_message

__all__ = [
    "MESSAGE_LIMIT",
    "DigestEnvironment",
    "EditionRenderer",
    "Item",
    "OutgoingMessage",
    "RenderedDigest",
    "TemplateProblem",
    "build_message",
    "items_from_outbox",
    "make_environment",
    "make_subject",
    "packaged_templates_dir",
    "render_digest",
    "subscriber_links",
    "template_dirs",
]
