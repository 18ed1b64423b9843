"""`digest preview`: render what a subscriber (or an ad-hoc profile) would get now.

With no papers stored it renders against the bundled sample, so a template author
always has something to look at.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine

from digest import store
from digest.config import Settings
from digest.errors import InputError
from digest.matching import Limits, compile_profile, match_all
from digest.models import Paper
from digest.pipeline import weights_from
from digest.rendering import Item, build_message, make_environment, render_digest
from digest.sources.file import FileSource, sample_path

PREVIEW_ADDRESS = "preview@example.org"


def preview_papers(engine: Engine, limit: int = 500) -> list[Paper]:
    papers = store.list_papers(engine, limit=limit)
    if papers:
        return papers
    batch = FileSource(sample_path(), name="sample").fetch({})
    return [
        Paper(seq=i, **{**r.__dict__, "sources": [r.source]}) for i, r in enumerate(batch.records)
    ]


def render_preview(
    engine: Engine, settings: Settings, email: str | None, keywords: str | None, fmt: str
) -> bytes:
    if email and keywords:
        raise InputError("give either a subscriber address or --keywords, not both")
    address, max_papers, min_score = PREVIEW_ADDRESS, settings.max_papers, None
    if email:
        sub = store.get_subscriber(engine, store.normalise_email(email))
        if sub is None:
            raise InputError(f"no subscriber with address {email}")
        keywords, address, max_papers, min_score = (
            sub.keywords,
            sub.email,
            sub.max_papers,
            sub.min_score,
        )
    if not keywords:
        raise InputError("give a subscriber address or --keywords")
    profile = compile_profile(keywords)
    papers = preview_papers(engine)
    matches = match_all(
        {0: profile}, papers, {0: Limits(max_papers, min_score)}, weights_from(settings)
    )[0]
    by_id = {p.id: p for p in papers}
    items = [Item(by_id[m.paper_id], m) for m in matches]
    env = make_environment(settings)
    rendered = render_digest(env, settings, address, items, date.today(), "preview", keywords)
    if fmt == "html":
        return rendered.html.encode("utf-8")
    if fmt == "text":
        return rendered.text.encode("utf-8")
    return build_message(settings, address, rendered).as_bytes()
