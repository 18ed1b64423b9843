"""Filters template authors can use; the card data already comes prepared, these are
for designers who want another shape."""

from __future__ import annotations

from jinja2 import Environment

from digest.rendering.text import cut_summary, readable, shorten, shorten_authors


def wrap(text: str, width: int = 72, indent: str = "") -> str:
    """Plain-text paragraphs wrapped for the text part, greedily at spaces; a word
    longer than the line (a URL) is kept whole rather than broken."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            if line and len(indent) + len(line) + 1 + len(word) > width:
                lines.append(indent + line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(indent + line if line else "")
    return "\n".join(lines)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"


def register(env: Environment) -> None:
    env.filters.update(
        wrap=wrap,
        readable=readable,
        summary=cut_summary,
        shorten=shorten,
        authors=shorten_authors,
        plural=plural,
    )
