"""`digest demo` shows real papers: the bundled sample carries arXiv ids, authors,
dates and links (built by tools/build_sample.py), and each demo run starts from an
empty outbox without touching anything else kept there."""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import date
from pathlib import Path

from digest.sources.file import sample_path

ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}")


def sample() -> list[dict]:
    return [json.loads(line) for line in sample_path().read_text("utf-8").splitlines() if line]


def test_the_sample_has_arxiv_ids_authors_dates_and_links():
    papers = sample()
    assert len(papers) == 50
    assert all(ARXIV_ID.fullmatch(p["id"]) for p in papers)
    assert len({p["id"] for p in papers}) == 50
    assert all(p["url"] == f"https://arxiv.org/abs/{p['id']}" for p in papers)
    assert all(p["authors"] for p in papers)
    assert sum(bool(p.get("published")) for p in papers) >= 45


def html_of(path: Path) -> str:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return msg.get_body(preferencelist=("html",)).get_content()


def test_demo_cards_link_to_the_real_papers_with_authors_and_dates(cli, tmp_path):
    res = cli("demo")
    assert res.code == 0, res.stderr
    by_id = {p["id"]: p for p in sample()}
    emls = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(emls) == 3
    for eml in emls:
        html = html_of(eml)
        linked = set(re.findall(r'href="https://arxiv\.org/abs/(\d{4}\.\d{4,5})"', html))
        assert linked and linked <= set(by_id), eml.name
        for paper_id in linked:
            paper = by_id[paper_id]
            first_author = paper["authors"][0]
            assert first_author in html or first_author.replace("'", "&#39;") in html
            if paper.get("published"):
                shown = f"{date.fromisoformat(paper['published']):%d %b %Y}".lstrip("0")
                assert shown in html, (paper_id, shown)


def test_a_second_demo_starts_from_an_empty_outbox_and_keeps_other_files(cli, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "notes.txt").write_text("mine", encoding="utf-8")
    (outbox / "keep.eml").write_text("mine too", encoding="utf-8")
    assert cli("demo").code == 0
    again = cli("demo")
    assert again.code == 0, again.stderr
    ours = sorted(p.name for p in outbox.glob("0*.eml"))
    assert len(ours) == 3, ours
    assert ours[0].startswith("000001-")  # numbering starts again: a fresh outbox
    assert (outbox / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (outbox / "keep.eml").read_text(encoding="utf-8") == "mine too"
    assert "(3 .eml files)" in again.stdout
