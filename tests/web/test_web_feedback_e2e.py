"""Issue 14 acceptance, end to end: subscribe with a plain-English interest, run an
edition through a real SMTP server, follow the "more like this" link of the received
message in real Chromium and press its button, run the next edition (new papers):
the paper like the one rated is in the digest, ranked above where a subscriber with
the same interest and no rating gets it (or gets it at all)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest
from conftest import settings_with
from web_served import served

from digest import pipeline, store, subscriptions
from digest.models import utcnow

INTEREST = (
    "I work on reward models and preference optimisation for aligning language "
    "models; not interested in jailbreaks"
)
DAY1 = [
    {
        "id": "2501.00001",
        "title": "Reward models for protein sequence design",
        "abstract": "We train reward models on protein stability assays and use them "
        "to steer protein sequence design with enzyme folding constraints.",
    },
    {
        "id": "2501.00002",
        "title": "Preference optimisation for aligning language models",
        "abstract": "Direct preference optimisation aligns language models with "
        "human preference data without an explicit reward model.",
    },
    {
        "id": "2501.00003",
        "title": "Jailbreaking aligned chat models",
        "abstract": "Adversarial prompts jailbreak aligned language models.",
    },
]
DAY2 = [
    {
        "id": "2501.00011",
        "title": "Enzyme design by protein folding simulation",
        "abstract": "Protein sequence design for enzyme stability with folding "
        "constraints from protein stability assays.",
    },
    {
        "id": "2501.00012",
        "title": "Reward model ensembles against overoptimisation",
        "abstract": "Ensembles of reward models reduce overoptimisation when "
        "aligning language models with preference optimisation.",
    },
    {
        "id": "2501.00013",
        "title": "Speech recognition for low-resource languages",
        "abstract": "Acoustic models for speech in low-resource languages.",
    },
]
LIKED, SIMILAR = "2501.00001", "2501.00011"


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def run_edition(engine, settings, **options) -> pipeline.RunReport:
    """On its own thread: Playwright's sync API keeps an event loop on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(pipeline.run_once, engine, settings, **options).result(timeout=300)


def plain(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def ranked_ids(engine, address: str, edition_of_row) -> list[str]:
    sub = store.get_subscriber(engine, address)
    rows = [
        r for r in store.digests_for_edition(engine, edition_of_row) if r.subscriber_id == sub.id
    ]
    return rows[0].paper_ids if rows else []


@pytest.mark.chromium
def test_more_like_this_from_the_email_changes_the_next_digest(
    tmp_path, settings, engine, smtp_sink, browser
):
    feed = tmp_path / "papers.jsonl"
    write_jsonl(feed, DAY1)
    settings = replace(settings, sources=f"file:{feed}")
    for address in ("ada@example.org", "control@example.org"):
        subscriptions.subscribe(engine, settings, address, None, interest=INTEREST)

    with served(settings, engine) as url:
        settings = settings_with(settings, base_url=url)
        now = utcnow()
        first = run_edition(engine, settings, everyone=True, now=now)
        assert first.send.sent == 2, first
        mail = next(m for m in smtp_sink.messages() if str(m["To"]) == "ada@example.org")
        text = plain(mail)
        assert "Reward models for protein sequence design" in text

        # The "more like this" link printed under the liked paper's card.
        card = text[text.index("Reward models for protein sequence design") :]
        link = re.search(r"More like this: (\S+)", card).group(1)
        assert link.startswith(url + "/feedback/")
        html = mail.get_body(preferencelist=("html",)).get_content()
        assert link.replace("&", "&amp;") in html or link in html

        context = browser.new_context()
        page = context.new_page()
        page.goto(link)
        assert store.list_ratings(engine, store.get_subscriber(engine, "ada@example.org").id) == []
        assert "Reward models for protein sequence design" in page.content()
        page.click("#feedback-submit")
        page.wait_for_selector("#feedback-recorded")
        ada = store.get_subscriber(engine, "ada@example.org")
        assert [(r.paper_id, r.vote) for r in store.list_ratings(engine, ada.id)] == [(LIKED, 1)]
        context.close()

        # The next day brings new papers; Ada's rating now counts, the control's none.
        write_jsonl(feed, DAY1 + DAY2)
        second = run_edition(engine, settings, everyone=True, now=now + timedelta(days=1))
        assert second.build.failed == 0
        edition = (now + timedelta(days=1)).date().isoformat()
        ada_ids = ranked_ids(engine, "ada@example.org", edition)
        control_ids = ranked_ids(engine, "control@example.org", edition)
        assert SIMILAR in ada_ids, (ada_ids, control_ids)
        if SIMILAR in control_ids:
            assert ada_ids.index(SIMILAR) < control_ids.index(SIMILAR), (ada_ids, control_ids)
        # and the mail says so: the similar paper is in Ada's second digest
        ada_mails = [m for m in smtp_sink.messages() if str(m["To"]) == "ada@example.org"]
        assert len(ada_mails) == 2
        assert "Enzyme design by protein folding simulation" in plain(ada_mails[-1])


@pytest.mark.chromium
def test_sign_up_with_an_interest_and_examples_in_chromium(settings, engine, smtp_sink, browser):
    """The sign-up page's interest and example papers: the live preview ranks by them,
    and the sign-up stores them (read back on the manage page)."""
    from digest.records import PaperRecord

    store.merge_papers(
        engine,
        [PaperRecord(source="t", **{k: p[k] for k in ("id", "title", "abstract")}) for p in DAY1],
    )
    with served(settings, engine) as url:
        page = browser.new_context().new_page()
        page.goto(url + "/")
        page.fill("#email", "ada@example.org")
        page.fill("#interest", INTEREST)
        page.locator("#preview-list li").first.wait_for(timeout=15_000)
        listed = page.locator("#preview-list").inner_text()
        assert "Preference optimisation for aligning language models" in listed
        assert "Jailbreaking" not in listed  # "not interested in jailbreaks" is honoured
        page.fill("#likes", "2501.00001")
        page.click("button[type=submit]")
        page.wait_for_url(url + "/check-your-inbox")
        sub = store.get_subscriber(engine, "ada@example.org")
        assert (sub.keywords, sub.interest, sub.likes) == ("", INTEREST, ["2501.00001"])
