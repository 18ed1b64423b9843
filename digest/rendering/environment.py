"""The Jinja environment: templates from `DIGEST_TEMPLATES_DIR` first (a designer's
overrides, file by file), then the packaged ones; CSS inlined into each HTML template
once, when it is loaded, instead of into every message.

Inlining the template source works by hiding each Jinja tag behind an HTML comment
(`<!--J0-->`), which an HTML parser keeps in place in any context, running css-inline,
then putting the tags back. So an HTML template must be well-formed HTML on its own:
a partial is a complete element (a whole `<table>`, not a bare `<tr>`), and Jinja tags
sit in text, between elements or inside quoted attribute values, never in place of an
attribute. Selectors are matched within each file.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)

from digest.config import Settings
from digest.errors import DigestError
from digest.matching.readable import TermAnalysis
from digest.rendering.filters import register as register_filters

STYLESHEET = "email.css"
CSS_MARKER = "/*digest:css*/"
_MISSING = object()
_JINJA_TAG_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


class TemplateProblem(DigestError):
    """A template that does not load or render; the message names file and line."""


def packaged_templates_dir() -> Path:
    """`digest/templates` in a wheel; the repository's `templates/` in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("digest templates are missing from this installation")


def template_dirs(settings: Settings) -> list[Path]:
    """`DIGEST_TEMPLATES_DIR` (when set) before the packaged templates."""
    custom = settings.templates_dir
    if custom is not None and not custom.is_dir():
        raise TemplateProblem(f"DIGEST_TEMPLATES_DIR: {custom} is not a folder")
    return [*([custom] if custom is not None else []), packaged_templates_dir()]


def inline_css(source: str, css: str) -> str:
    """`source` (a Jinja HTML template) with `css` applied as style attributes."""
    tags: list[str] = []
    nonce = secrets.token_hex(4)  # so a comment the author wrote is never taken for one

    def hide(m: re.Match[str]) -> str:
        tags.append(m.group())
        return f"<!--J{nonce}.{len(tags) - 1}-->"

    hidden = _JINJA_TAG_RE.sub(hide, source)
    if "<html" in hidden[:2000].lower():
        hidden = hidden.replace(CSS_MARKER, css)
        inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        inlined = _style_after_meta(inliner.inline(hidden))
    else:
        inlined = css_inline.inline_fragment(hidden, css)
    inlined = _STYLE_ATTR_RE.sub(_compact_style, inlined)
    placeholder = re.compile(f"<!--J{nonce}\\.(\\d+)-->|&lt;!--J{nonce}\\.(\\d+)--&gt;")
    return placeholder.sub(lambda m: tags[int(m.group(1) or m.group(2))], inlined)


_STYLE_ATTR_RE = re.compile(r'( style=")([^"<>]*)(")')


def _compact_style(m: re.Match[str]) -> str:
    """`style="margin: 0;padding: 0 4px;"` as `style="margin:0;padding:0 4px"`: the
    spaces around a declaration's colon and the last semicolon mean nothing to CSS,
    and every card of every message carries a dozen such attributes. Left as it is
    when a declaration could hold a `;` or `:` of its own (quotes, parentheses, a
    template tag, an entity)."""
    value = m.group(2)
    if any(c in value for c in "()'\\{}&!") or "--" in value:
        return m.group(0)
    declarations = []
    for declaration in value.split(";"):
        name, colon, rest = declaration.partition(":")
        if not colon:
            if declaration.strip():
                return m.group(0)
            continue
        declarations.append(f"{name.strip()}:{rest.strip()}")
    return m.group(1) + ";".join(declarations) + m.group(3)


def _style_after_meta(document: str) -> str:
    """css-inline puts the kept at-rules first in <head>; move them to its end, so
    `<meta charset>` stays within the first bytes where browsers look for it."""
    head_start = document.find("<head>")
    if head_start < 0 or not document.startswith("<style>", head_start + 6):
        return document
    style_end = document.find("</style>", head_start) + len("</style>")
    head_end = document.find("</head>", style_end)
    if style_end < len("</style>") or head_end < 0:
        return document
    style = document[head_start + 6 : style_end]
    return document[: head_start + 6] + document[style_end:head_end] + style + document[head_end:]


class InliningLoader(BaseLoader):
    """Loads through `inner`; `.html` templates come back with the CSS inlined."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        try:
            source, filename, uptodate = self.inner.get_source(environment, template)
        except TemplateNotFound:
            raise TemplateNotFound(template, self._not_found(template)) from None
        if not template.endswith((".html", ".htm")):
            return source, filename, uptodate
        # Check the syntax on the file as written, so errors carry its real lines.
        environment.parse(source, template, filename)
        css, _, css_uptodate = self.inner.get_source(environment, STYLESHEET)
        try:
            inlined = inline_css(source, css)
        except (css_inline.InlineError, ValueError) as exc:
            raise TemplateProblem(
                f"{filename or template}: CSS could not be inlined: {exc}"
            ) from None

        def both_uptodate() -> bool:
            return bool(
                (uptodate is None or uptodate()) and (css_uptodate is None or css_uptodate())
            )

        return inlined, filename, both_uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()

    def _not_found(self, template: str) -> str:
        """A missing template (an `{% include %}` of a name no folder has) said as
        such, with the folders searched: Jinja's own message is the bare name."""
        inner = self.inner.loaders if isinstance(self.inner, ChoiceLoader) else [self.inner]
        folders = [str(p) for loader in inner for p in getattr(loader, "searchpath", [])]
        where = " or ".join(folders) or "the template folders"
        message = f"template {template[:200]!r} not found in {where}"
        if template.startswith("/") or ".." in template.split("/"):
            message += " (a template name is a path inside those folders)"
        return message


class DigestEnvironment(Environment):
    """A Jinja environment that also holds the caches of one rendering run: what is
    known about each paper (analysed text, its card as a pattern), the cards that
    are the same for every subscriber with the same terms, the papers' texts
    analysed for subjects, and the pages' patterns. Each is bounded, so memory
    follows the papers of a run, not its subscribers."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(**options)
        self.settings = settings
        # Not `cache`: that is Jinja's own cache of compiled templates (a card cache
        # there made every template be loaded, inlined and compiled again each time
        # the cards rotated).
        self.cards: dict[Any, Any] = {}
        self.old_cards: dict[Any, Any] = {}
        # Two generations of 2,000 cards (~8.5 kB each): 6,000 held ~70 MiB more per
        # build worker for ~3% less CPU (a 10,000-subscriber edition, realistic profiles).
        self.cards_limit = 2_000
        self.papers: dict[Any, Any] = {}
        self.papers_limit = 20_000
        self.analysis = TermAnalysis()
        # The cards' reasons cleaned, for every paper (cards._reason).
        self.reasons: dict[str, str] = {}
        # Page patterns by shape (frame.py); None where the templates give none.
        self.frames: dict[Any, Any] = {}
        self.frames_limit = 2_000
        # Per page template, how many shapes' patterns passed the check against a
        # direct render (frame.learn_frame); negative once one failed.
        self.frame_checks: dict[str, int] = {}
        # Papers whose card patterns passed the sample check, by `with_why`; past
        # cards.CARD_CHECKS the templates are trusted (negative once one failed:
        # then every paper is checked).
        self.card_checks: dict[bool, int] = {}
        # False renders every card straight from its templates (the reference the
        # spliced cards are tested against, byte for byte).
        self.splice_cards = True

    def paper_state(self, key: Any, make: Callable[[], Any]) -> Any:
        """`make()` once per paper key (id and version), kept apart from the cards so
        that dropping a full card cache never drops the per-paper work."""
        try:
            return self.papers[key]
        except KeyError:
            pass
        if len(self.papers) >= self.papers_limit:
            self.papers.clear()
        value = self.papers[key] = make()
        return value

    def remember(self, key: Any, make: Callable[[], Any]) -> Any:
        """`make()` once per key, kept in two generations: when the newer one is full
        it becomes the older (the one before is dropped) and a value found there moves
        back to the newer. So the cards in use survive, memory stays bounded at twice
        `cards_limit`, and there is no bookkeeping per entry."""
        try:
            return self.cards[key]
        except KeyError:
            pass
        value = self.old_cards.get(key, _MISSING)
        if value is _MISSING:
            value = make()
        if len(self.cards) >= self.cards_limit:
            self.old_cards, self.cards = self.cards, {}
        self.cards[key] = value
        return value


def make_environment(settings: Settings) -> DigestEnvironment:
    loader = ChoiceLoader([FileSystemLoader(str(d)) for d in template_dirs(settings)])
    env = DigestEnvironment(
        settings,
        loader=InliningLoader(loader),
        autoescape=select_autoescape(["html", "htm", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        keep_trailing_newline=True,
    )
    register_filters(env)
    return env


def load_template(env: Environment, name: str) -> Any:
    """`env.get_template(name)`, with any template error named by file and line."""
    try:
        return env.get_template(name)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template error in {exc.filename or exc.name or name}, line {exc.lineno}: {exc.message}"
        ) from None
    except TemplateError as exc:
        raise TemplateProblem(f"template error in {name}: {exc}") from None


def describe_render_error(exc: Exception, name: str) -> TemplateProblem:
    """Find the template frame in the traceback so the message names file and line."""
    if isinstance(exc, TemplateSyntaxError):
        where = exc.filename or exc.name or name
        return TemplateProblem(f"template error in {where}, line {exc.lineno}: {exc.message}")
    tb = exc.__traceback__
    where = name
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".txt", ".htm", ".css")):
            where = f"{filename}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return TemplateProblem(f"template error in {where}: {exc}")
