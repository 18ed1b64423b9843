"""The Jinja environment of the web pages and the web app's mails.

It looks templates up exactly as the digest does (`DIGEST_TEMPLATES_DIR` first, file
by file, then the shipped `templates/`), with the same autoescaping and strictness;
pages live under `web/`. It does not inline the email stylesheet: pages carry their
own nonce-protected style sheet under a CSP that forbids inline style attributes.
"""

from __future__ import annotations

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest.config import Settings
from digest.rendering import template_dirs
from digest.web.site import site_facts


def make_web_environment(settings: Settings) -> Environment:
    loader = ChoiceLoader([FileSystemLoader(str(d)) for d in template_dirs(settings)])
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(["html", "htm", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    # `site`: the configured sources and send rhythm, which the pages describe.
    env.globals["site"] = site_facts(settings)
    return env
