"""The view-in-browser link of a digest whose stored email `digest prune` deleted
still shows the digest, re-rendered from its papers; with the papers gone too it is
the "no longer stored" page, not an error."""

from __future__ import annotations

import re
from datetime import timedelta

from markupsafe import escape
from sqlalchemy import text
from starlette.testclient import TestClient

from digest import pipeline, store
from digest.models import Subscriber, utcnow
from digest.tokens import make_token
from digest.web.app import create_app


def sent_and_pruned(engine, settings):
    """One real digest sent through the SMTP sink, aged 30 days, then pruned."""
    now = utcnow()
    store.add_subscriber(
        engine,
        Subscriber(
            email="ada@example.org",
            keywords="diffusion",
            status="active",
            created_at=now,
            confirmed_at=now,
        ),
    )
    pipeline.run_once(engine, settings, everyone=True)
    (row,) = store.digests_for_edition(engine)
    assert row.status == "sent" and row.message
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE digest SET created_at = :at, sent_at = :at"),
            {"at": now - timedelta(days=30)},
        )
    assert store.prune(engine, 7, 0).messages == 1
    (row,) = store.digests_for_edition(engine)
    assert row.message is None and row.paper_ids
    return row


def view(settings, engine, row):
    token = make_token(settings.secret_key, "view", f"{row.subscriber_id}:{row.edition}")
    with TestClient(create_app(settings, engine), base_url=settings.base_url) as client:
        return client.get(f"/view/{token}")


def test_a_pruned_digest_is_still_shown_from_its_papers(engine, settings, smtp_sink):
    row = sent_and_pruned(engine, settings)
    page = view(settings, engine, row)
    assert page.status_code == 200
    titles = [str(escape(p.title)) for p in store.papers_by_ids(engine, row.paper_ids).values()]
    shown = re.sub(r"<[^>]+>", "", page.text)  # titles hold <mark>ed matches
    assert titles and all(title in shown for title in titles)
    sent_html = smtp_sink.messages()[0].get_body(preferencelist=("html",)).get_content()
    assert all(title in re.sub(r"<[^>]+>", "", sent_html) for title in titles)


def test_a_pruned_digest_whose_papers_are_gone_is_no_longer_stored(engine, settings, smtp_sink):
    row = sent_and_pruned(engine, settings)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM paper WHERE id = :id"), {"id": row.paper_ids[0]})
    page = view(settings, engine, row)
    assert page.status_code == 410
    assert "Nothing here any more" in page.text
