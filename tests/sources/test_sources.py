"""Paper sources against a real HTTP server on loopback replaying recorded responses:
the polite HTTP client, Hugging Face Daily Papers, arXiv (listing and export API),
RSS/Atom feeds, and how their records merge in a real SQLite store."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from replay_server import FIXTURES, ReplayServer, Reply, fixture_bytes, json_reply, xml
from sqlmodel import Session, select

from digest import pipeline, store
from digest.config import Settings, load_settings
from digest.errors import ConfigError, SourceError
from digest.models import Paper, SourceState
from digest.sources import build_source, build_sources, parse_source_specs
from digest.sources.arxiv import ArxivSource
from digest.sources.base import canonical_arxiv_id, clean_text
from digest.sources.http import HttpClient, SourceClients, retry_after_seconds, user_agent
from digest.sources.huggingface import HuggingFaceSource

TODAY = date(2024, 11, 18)
HF_PATH = "/api/daily_papers"
RSS_PATH = "/rss/cs.CL"
API_PATH = "/api/query"


def make_settings(replay: ReplayServer, tmp_path: Path, **changes: object) -> Settings:
    base = Settings(
        database_url=f"sqlite:///{tmp_path / 'sources.db'}",
        sources="huggingface,arxiv:cs.CL",
        huggingface_url=replay.url,
        arxiv_rss_url=replay.url + "/rss",
        arxiv_api_url=replay.url + API_PATH,
        arxiv_min_interval=0.0,
        http_timeout=2.0,
        http_retries=2,
        http_backoff=0.01,
        contact_email="Ops <ops@example.org>",
    )
    return replace(base, **changes)


def papers_by_id(engine) -> dict[str, Paper]:
    return {p.id: p for p in store.list_papers(engine)}


def hf_source(settings: Settings, today: date = TODAY) -> HuggingFaceSource:
    return HuggingFaceSource(settings, HttpClient(settings), today=lambda: today)


def arxiv_source(settings: Settings, cats: list[str] | None = None) -> ArxivSource:
    client = SourceClients(settings).arxiv
    return ArxivSource(cats or ["cs.CL"], settings, client, today=lambda: TODAY)


# ---------------------------------------------------------------- ids and text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2411.10001", "2411.10001"),
        ("2411.10001v3", "2411.10001"),
        ("arXiv:2411.10001v1", "2411.10001"),
        ("oai:arXiv.org:2411.10001v1", "2411.10001"),
        ("https://arxiv.org/abs/2411.10001v2", "2411.10001"),
        ("http://arxiv.org/pdf/2411.10001v1", "2411.10001"),
        ("hep-th/9901001v2", "hep-th/9901001"),
        ("https://example.org/2411.10001", None),
        ("title:abc", None),
        ("", None),
    ],
)
def test_canonical_arxiv_id_strips_versions_and_prefixes(raw: str, expected: str | None):
    assert canonical_arxiv_id(raw) == expected


def test_clean_text_folds_markup_entities_and_crlf_but_keeps_latex():
    assert clean_text("H<sub>2</sub>O <p>next</p>", 100) == "H2O next"
    assert clean_text("if a < b and c > d then $p<q$", 100) == "if a < b and c > d then $p<q$"
    assert clean_text("&lt;script&gt;x()&lt;/script&gt;Title", 100) == "Title"
    text = clean_text("Scaling $\\alpha$-Entmax &amp; <b>Friends</b>\r\nX-Header: evil", 1000)
    assert text == "Scaling $\\alpha$-Entmax & Friends X-Header: evil"
    assert len(clean_text("A" * 10_000, 1000)) == 1000


# ---------------------------------------------------------------- HTTP client


def test_every_request_names_the_project_and_a_contact(replay: ReplayServer, tmp_path: Path):
    settings = make_settings(replay, tmp_path)
    replay.route("/ok", Reply(200, b"fine"))
    with HttpClient(settings).session() as s:
        resp = s.get(replay.url + "/ok")
    assert resp.content == b"fine"
    assert replay.requests[0].headers["user-agent"] == "digest/0.1.0 (+mailto:ops@example.org)"
    assert user_agent(settings) == "digest/0.1.0 (+mailto:ops@example.org)"


def test_5xx_is_retried_then_succeeds(replay: ReplayServer, tmp_path: Path):
    replay.route("/flaky", Reply(500), Reply(503), Reply(200, b"ok"))
    with HttpClient(make_settings(replay, tmp_path, http_retries=2)).session() as s:
        assert s.get(replay.url + "/flaky").content == b"ok"
    assert len(replay.hits("/flaky")) == 3


def test_persistent_500_fails_with_a_clear_error(replay: ReplayServer, tmp_path: Path):
    replay.route("/down", Reply(500, b"boom"))
    with (
        HttpClient(make_settings(replay, tmp_path, http_retries=1)).session() as s,
        pytest.raises(SourceError, match=r"HTTP 500 from http://127\.0\.0\.1:\d+/down after 2"),
    ):
        s.get(replay.url + "/down")
    assert len(replay.hits("/down")) == 2


def test_404_is_not_retried(replay: ReplayServer, tmp_path: Path):
    with (
        HttpClient(make_settings(replay, tmp_path)).session() as s,
        pytest.raises(SourceError, match="HTTP 404"),
    ):
        s.get(replay.url + "/missing")
    assert len(replay.hits("/missing")) == 1


def test_429_waits_for_retry_after_then_succeeds(replay: ReplayServer, tmp_path: Path):
    replay.route("/busy", Reply(429, headers={"Retry-After": "1"}), Reply(200, b"ok"))
    with HttpClient(make_settings(replay, tmp_path)).session() as s:
        assert s.get(replay.url + "/busy").content == b"ok"
    first, second = replay.hits("/busy")
    assert second.at - first.at >= 1.0


def test_429_asking_for_too_long_a_wait_fails_this_run(replay: ReplayServer, tmp_path: Path):
    replay.route("/busy", Reply(429, headers={"Retry-After": "3600"}))
    with (
        HttpClient(make_settings(replay, tmp_path)).session() as s,
        pytest.raises(SourceError, match="retry after 3600 s"),
    ):
        s.get(replay.url + "/busy")
    assert len(replay.hits("/busy")) == 1


def test_a_slow_server_times_out_and_is_retried(replay: ReplayServer, tmp_path: Path):
    replay.route("/slow", Reply(200, b"late", delay=2.0))
    settings = make_settings(replay, tmp_path, http_timeout=0.3, http_retries=1)
    started = time.monotonic()
    with (
        HttpClient(settings).session() as s,
        pytest.raises(SourceError, match=r"timed out after 0\.3 s .* after 2 attempts"),
    ):
        s.get(replay.url + "/slow")
    assert time.monotonic() - started < 1.9
    assert len(replay.hits("/slow")) == 2


def test_retry_after_accepts_seconds_and_http_dates():
    from datetime import UTC, datetime

    now = datetime(2024, 11, 18, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Mon, 18 Nov 2024 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_arxiv_requests_keep_the_minimum_interval_on_one_connection(
    replay: ReplayServer, tmp_path: Path
):
    """Two category sets, a listing each, a two-page backfill and a retried 503: on the
    server's clock no two requests come closer than DIGEST_ARXIV_MIN_INTERVAL."""
    interval = 0.3
    settings = make_settings(replay, tmp_path, arxiv_min_interval=interval)
    replay.route(RSS_PATH, Reply(503), xml("arxiv_rss_cs.CL.xml"))
    replay.route("/rss/cs.LG", xml("arxiv_rss_cs.CL_day2.xml"))
    replay.route(API_PATH, xml("arxiv_api_page1.xml"), start="0")
    replay.route(API_PATH, xml("arxiv_api_page2.xml"), start="2")
    cl, lg = build_sources(settings, "arxiv:cs.CL,arxiv:cs.LG")
    cl.fetch({})
    lg.fetch({})
    cl.fetch({}, since=date(2024, 11, 1))
    times = [r.at for r in replay.requests]
    assert len(times) == 5
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= interval, gaps
    # One fetch, one connection: the listing and its retry came from one client port.
    first_two = replay.requests[:2]
    assert first_two[0].port == first_two[1].port
    assert Settings().arxiv_min_interval == 3.0
    assert load_settings({"DIGEST_ARXIV_MIN_INTERVAL": "0.5"}, None).arxiv_min_interval == 0.5


# ---------------------------------------------------------------- Hugging Face


def test_huggingface_keeps_what_only_it_knows(replay: ReplayServer, tmp_path: Path):
    replay.route(HF_PATH, json_reply("hf_daily_papers.json"))
    batch = hf_source(make_settings(replay, tmp_path)).fetch({})
    by_id = {r.id: r for r in batch.records}
    assert set(by_id) == {"2411.10001", "2411.10002", "2411.10003"}
    assert not batch.warnings
    a = by_id["2411.10001"]
    assert a.upvotes == 42 and a.github_stars == 310 and a.num_comments == 3
    assert a.ai_summary.startswith("A sparse attention scheme")
    assert a.ai_keywords == ["sparse attention", "long context", "language models"]
    assert a.code_url == "https://github.com/example/sparse-attn"
    assert a.project_url == "https://sparse-attn.github.io/"
    assert a.hf_url == f"{replay.url}/papers/2411.10001"
    assert a.url == "https://arxiv.org/abs/2411.10001"
    assert a.pdf_url == "https://arxiv.org/pdf/2411.10001"
    assert a.authors == ["Ada Lovelace", "Alan Turing"]
    assert a.published == date(2024, 11, 15)
    assert a.abstract == (
        "We study sparse attention for long-context language models. "
        "Our method keeps quality while cutting memory by 4x."
    )
    assert a.thumbnail.endswith("/2411.10001.png")
    c = by_id["2411.10003"]
    assert c.title == "Scaling $\\alpha$-Entmax & Friends"
    assert c.abstract == "We scale $\\alpha$-entmax to 1 B parameters & show gains."
    assert c.code_url is None and c.ai_summary is None
    # First fetch: yesterday and today; the cursor remembers today.
    assert [r.query["date"] for r in replay.hits(HF_PATH)] == ["2024-11-17", "2024-11-18"]
    assert {r.query["limit"] for r in replay.hits(HF_PATH)} == {"100"}
    assert batch.cursor == {"last_date": "2024-11-18"}


def test_huggingface_resumes_from_its_cursor_and_backfills_with_since(
    replay: ReplayServer, tmp_path: Path
):
    replay.route(HF_PATH, json_reply("hf_daily_papers.json"))
    settings = make_settings(replay, tmp_path)
    batch = hf_source(settings, date(2024, 11, 20)).fetch({"last_date": "2024-11-18"})
    assert [r.query["date"] for r in replay.hits(HF_PATH)] == [
        "2024-11-18",
        "2024-11-19",
        "2024-11-20",
    ]
    assert batch.cursor == {"last_date": "2024-11-20"}
    replay.requests.clear()
    hf_source(settings).fetch({"last_date": "2024-11-18"}, since=date(2024, 11, 15))
    assert [r.query["date"] for r in replay.hits(HF_PATH)] == [
        "2024-11-15",
        "2024-11-16",
        "2024-11-17",
        "2024-11-18",
    ]


def test_huggingface_truncated_json_fails_the_source(replay: ReplayServer, tmp_path: Path):
    replay.route(HF_PATH, json_reply("hf_truncated.json"))
    with pytest.raises(SourceError, match="malformed JSON"):
        hf_source(make_settings(replay, tmp_path)).fetch({})


@pytest.mark.parametrize(
    "body",
    [b'[{"upvotes": 1' + b"9" * 5000 + b"}]", b"[" * 100_000 + b"]" * 100_000],
    ids=["number-over-python-digit-limit", "nested-100000-deep"],
)
def test_huggingface_hostile_json_fails_the_source(
    replay: ReplayServer, tmp_path: Path, body: bytes
):
    replay.route(HF_PATH, Reply(200, body))
    with pytest.raises(SourceError, match="malformed JSON"):
        hf_source(make_settings(replay, tmp_path)).fetch({})


def test_huggingface_non_list_json_fails_the_source(replay: ReplayServer, tmp_path: Path):
    replay.route(HF_PATH, Reply(200, b'{"error": "Invalid date"}'))
    with pytest.raises(SourceError, match="expected a list, got dict"):
        hf_source(make_settings(replay, tmp_path)).fetch({})


def test_huggingface_items_missing_fields_are_reported_and_skipped(
    replay: ReplayServer, tmp_path: Path
):
    replay.route(HF_PATH, json_reply("hf_missing_fields.json"))
    batch = hf_source(make_settings(replay, tmp_path), TODAY).fetch({"last_date": "2024-11-18"})
    by_id = {r.id: r for r in batch.records}
    assert set(by_id) == {"2411.10011", "2411.10012"}
    text = "\n".join(batch.warnings)
    assert "no 'paper' object" in text
    assert "no 'id'" in text
    assert "2411.10010: no title" in text
    assert "is not an arXiv id" in text
    odd = by_id["2411.10012"]
    assert odd.code_url is None  # javascript: dropped
    assert odd.upvotes is None and odd.github_stars is None and odd.num_comments is None
    assert odd.authors == [] and odd.ai_keywords == [] and odd.published is None
    assert odd.thumbnail is None


def test_huggingface_all_items_unreadable_fails_the_source(replay: ReplayServer, tmp_path: Path):
    replay.route(HF_PATH, Reply(200, b'[{"paper": {"title": "x"}}, {"nope": 1}]'))
    with pytest.raises(SourceError, match="none of the 2 items"):
        hf_source(make_settings(replay, tmp_path)).fetch({})


def test_hostile_titles_are_cleaned_before_they_reach_the_store(
    replay: ReplayServer, tmp_path: Path, source_engine
):
    hostile = [
        {"paper": {"id": "2411.30001", "title": "<script>alert(1)</script>Real\r\nBcc: x@y"}},
        {"paper": {"id": "2411.30002", "title": "T" * 10_000, "summary": "S" * 100_000}},
        {"paper": {"id": "2411.30003", "title": "[/] [bold]markup[/bold] &lt;b&gt;"}},
    ]
    replay.route(HF_PATH, Reply(200, json.dumps(hostile).encode()))
    batch = hf_source(make_settings(replay, tmp_path)).fetch({"last_date": "2024-11-18"})
    store.merge_papers(source_engine, batch.records)
    papers = papers_by_id(source_engine)
    assert papers["2411.30001"].title == "Real Bcc: x@y"
    assert len(papers["2411.30002"].title) == 1000
    assert len(papers["2411.30002"].abstract) == 20000
    assert papers["2411.30003"].title == "[/] [bold]markup[/bold]"
    for p in papers.values():
        assert "\r" not in p.title and "\n" not in p.title and "<script" not in p.title


# ---------------------------------------------------------------- arXiv


def test_arxiv_listing_new_cross_and_replace(replay: ReplayServer, tmp_path: Path):
    replay.route(RSS_PATH, xml("arxiv_rss_cs.CL.xml"))
    batch = arxiv_source(make_settings(replay, tmp_path)).fetch({})
    by_id = {r.id: r for r in batch.records}
    assert set(by_id) == {"2411.10001", "2411.10004", "2410.09999", "2410.08888"}
    assert not batch.warnings
    new = by_id["2411.10001"]
    assert not new.update_only
    assert new.authors == ["Ada Lovelace", "Alan Turing"]
    assert new.categories == ["cs.CL", "cs.AI", "cs.LG"]
    assert new.abstract.startswith("We study sparse attention")
    assert "Announce Type" not in new.abstract
    assert new.published == date(2024, 11, 18)
    cross = by_id["2411.10004"]
    assert not cross.update_only
    assert cross.authors == ["Barbara Liskov", "Donald E. Knuth", "John McCarthy"]
    assert cross.abstract.endswith("hurts recall of facts across languages.")
    assert by_id["2410.09999"].update_only and by_id["2410.08888"].update_only
    assert by_id["2410.09999"].published is None


def test_arxiv_listing_uses_a_conditional_get(replay: ReplayServer, tmp_path: Path):
    replay.route(
        RSS_PATH,
        xml("arxiv_rss_cs.CL.xml", ETag='"abc"', **{"Last-Modified": "Mon, 18 Nov 2024"}),
        Reply(304),
    )
    source = arxiv_source(make_settings(replay, tmp_path))
    first = source.fetch({})
    assert first.cursor == {"etag": '"abc"', "last_modified": "Mon, 18 Nov 2024"}
    second = source.fetch(first.cursor)
    assert second.records == [] and second.cursor == first.cursor
    assert replay.hits(RSS_PATH)[1].headers["if-none-match"] == '"abc"'


def test_arxiv_invalid_xml_fails_the_source(replay: ReplayServer, tmp_path: Path):
    replay.route(RSS_PATH, xml("arxiv_rss_invalid.xml"))
    with pytest.raises(SourceError, match="malformed XML"):
        arxiv_source(make_settings(replay, tmp_path)).fetch({})


def test_arxiv_html_error_page_is_not_a_feed(replay: ReplayServer, tmp_path: Path):
    replay.route(RSS_PATH, Reply(200, b"<html><body>Maintenance</body></html>"))
    with pytest.raises(SourceError):
        arxiv_source(make_settings(replay, tmp_path)).fetch({})


def test_arxiv_backfill_pages_through_the_export_api(replay: ReplayServer, tmp_path: Path):
    replay.route(API_PATH, xml("arxiv_api_page1.xml"), start="0")
    replay.route(API_PATH, xml("arxiv_api_page2.xml"), start="2")
    settings = make_settings(replay, tmp_path)
    batch = arxiv_source(settings, ["cs.CL", "cs.LG"]).fetch(
        {"etag": "kept"}, since=date(2024, 11, 13)
    )
    by_id = {r.id: r for r in batch.records}
    # 2411.08000 was submitted on 2024-11-12, before --since.
    assert set(by_id) == {"2411.10001", "2411.09876"}
    beta = by_id["2411.09876"]
    assert beta.primary_category == "cs.CL"
    assert beta.title == "Probing $\\beta$-Calibration in Instruction-Tuned Models"
    assert beta.authors == ["Karen Spärck Jones"]
    assert beta.published == date(2024, 11, 14)
    assert by_id["2411.10001"].title == "Sparse Attention for Long-Context Language Models"
    assert batch.cursor == {"etag": "kept"}
    first, second = replay.hits(API_PATH)
    assert first.query["search_query"] == (
        "(cat:cs.CL OR cat:cs.LG) AND submittedDate:[202411130000 TO 202411182359]"
    )
    assert first.query["sortBy"] == "submittedDate" and second.query["start"] == "2"


def test_arxiv_api_error_feed_fails_the_source(replay: ReplayServer, tmp_path: Path):
    replay.route(API_PATH, xml("arxiv_api_error.xml"))
    with pytest.raises(SourceError, match="arXiv API error: max_results must be non-negative"):
        arxiv_source(make_settings(replay, tmp_path)).fetch({}, since=date(2024, 11, 1))


# ---------------------------------------------------------------- feeds


def test_rss2_feed_entries_are_keyed_by_doi_arxiv_id_or_link(replay: ReplayServer, tmp_path: Path):
    replay.route("/bio.rss", xml("feed_rss2.xml"))
    source = build_source(f"feed:{replay.url}/bio.rss", make_settings(replay, tmp_path))
    batch = source.fetch({})
    by_id = {r.id: r for r in batch.records}
    assert set(by_id) == {
        "doi:10.1101/2024.11.15.623001",
        "https://lab.example.org/blog/sparse-attention",
        "https://journal.example.org/articles/42",
    }
    bio = by_id["doi:10.1101/2024.11.15.623001"]
    assert bio.title == "Place Cells Remap Slowly in Novel Arenas"
    assert bio.abstract == "We recorded place cells for 30 days & found slow remapping."
    assert bio.authors == ["Rosalind Franklin", "Santiago Ramon y Cajal"]
    assert bio.published == date(2024, 11, 17)
    assert bio.categories == ["Neuroscience"]
    assert bio.url.startswith("https://www.biorxiv.org/content/10.1101/")
    assert batch.warnings == ["entry 4: entry has no title"]


def test_atom_feed_entry_pointing_at_arxiv_merges_with_the_arxiv_paper(
    replay: ReplayServer, tmp_path: Path
):
    replay.route("/journal.atom", xml("feed_atom.xml"))
    source = build_source(f"feed:{replay.url}/journal.atom", make_settings(replay, tmp_path))
    by_id = {r.id: r for r in source.fetch({}).records}
    assert set(by_id) == {"tag:journal.example.org,2024:article-1001", "2411.10002"}
    gnn = by_id["tag:journal.example.org,2024:article-1001"]
    assert gnn.title == "Graph Neural Networks & the Weisfeiler-Lehman Test"
    assert gnn.authors == ["Boris Weisfeiler", "Andrei Lehman"]
    assert gnn.published == date(2024, 11, 16)
    assert by_id["2411.10002"].url == "https://arxiv.org/abs/2411.10002"
    assert by_id["2411.10002"].abstract == "Video diffusion with temporal tokens, as accepted."


def test_feed_since_filters_old_entries(replay: ReplayServer, tmp_path: Path):
    replay.route("/journal.atom", xml("feed_atom.xml"))
    source = build_source(f"feed:{replay.url}/journal.atom", make_settings(replay, tmp_path))
    ids = [r.id for r in source.fetch({}, since=date(2024, 11, 16)).records]
    assert ids == ["tag:journal.example.org,2024:article-1001"]


def test_invalid_feed_fails_the_source(replay: ReplayServer, tmp_path: Path):
    replay.route("/bad.rss", xml("feed_invalid.xml"))
    source = build_source(f"feed:{replay.url}/bad.rss", make_settings(replay, tmp_path))
    with pytest.raises(SourceError, match="malformed XML"):
        source.fetch({})


# ---------------------------------------------------------------- registry


def test_source_specs_and_their_errors(tmp_path: Path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert parse_source_specs("huggingface, arxiv:cs.CL+cs.LG,feed:https://x.org/a?b=1,2") == [
        "huggingface",
        "arxiv:cs.CL+cs.LG",
        "feed:https://x.org/a?b=1,2",
    ]
    names = [s.name for s in build_sources(settings, "huggingface,arxiv:cs.CL+cs.LG,sample")]
    assert names == ["huggingface", "arxiv:cs.CL+cs.LG", "sample"]
    for bad in ["arxiv:", "arxiv:cs.CL;rm -rf", "feed:ftp://x.org/feed", "bogus", "feed:"]:
        with pytest.raises(ConfigError, match="DIGEST_SOURCES"):
            build_sources(settings, bad)


# ---------------------------------------------------------------- store merge


def test_a_paper_seen_by_two_sources_is_one_row_with_the_best_of_both(
    replay: ReplayServer, tmp_path: Path, source_engine
):
    replay.route(HF_PATH, json_reply("hf_daily_papers.json"))
    replay.route(RSS_PATH, xml("arxiv_rss_cs.CL.xml"))
    replay.route(API_PATH, xml("arxiv_api_page1.xml"))
    settings = make_settings(replay, tmp_path)
    hf = store.merge_papers(source_engine, hf_source(settings).fetch({}).records)
    ax = store.merge_papers(source_engine, arxiv_source(settings).fetch({}).records)
    assert (hf.new, ax.new, ax.updated, ax.skipped) == (3, 1, 1, 2)
    api = arxiv_source(settings).fetch({}, since=date(2024, 11, 1))
    store.merge_papers(source_engine, api.records)
    p = papers_by_id(source_engine)["2411.10001"]
    assert p.sources == ["huggingface", "arxiv:cs.CL"]
    assert p.upvotes == 42 and p.hf_url.endswith("/papers/2411.10001")
    assert p.categories == ["cs.CL", "cs.AI", "cs.LG"] and p.primary_category == "cs.CL"
    assert p.code_url == "https://github.com/example/sparse-attn"
    assert p.published == date(2024, 11, 15)  # the earliest date, not the listing's


def test_versioned_ids_from_any_source_fold_into_one_paper(source_engine, tmp_path: Path):
    lines = [
        {"id": "2411.10001v1", "title": "Sparse Attention", "upvotes": 3},
        {"id": "arXiv:2411.10001v2", "title": "Sparse Attention", "upvotes": 9},
    ]
    path = tmp_path / "papers.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    source = build_source(f"file:{path}", Settings())
    counts = store.merge_papers(source_engine, source.fetch({}).records)
    assert counts.new == 1
    assert list(papers_by_id(source_engine)) == ["2411.10001"]
    assert papers_by_id(source_engine)["2411.10001"].upvotes == 9


def test_a_bad_response_leaves_stored_papers_and_the_cursor_untouched(
    replay: ReplayServer, tmp_path: Path, source_engine
):
    settings = make_settings(replay, tmp_path, sources="huggingface", http_retries=0)
    replay.route(HF_PATH, json_reply("hf_daily_papers.json"))
    [ok] = pipeline.fetch_all(source_engine, settings)
    assert ok.new == 3 and not ok.failed
    before = {p.id: p.model_dump() for p in store.list_papers(source_engine)}
    cursor = store.get_source_state(source_engine, "huggingface").cursor
    for broken in (json_reply("hf_truncated.json"), Reply(500), Reply(200, b"[1, 2]")):
        replay.route(HF_PATH, broken)
        [report] = pipeline.fetch_all(source_engine, settings)
        assert report.failed and report.errors
        assert {p.id: p.model_dump() for p in store.list_papers(source_engine)} == before
        state = store.get_source_state(source_engine, "huggingface")
        assert state.cursor == cursor and state.last_status == "error"
    with Session(source_engine) as session:
        assert len(session.exec(select(SourceState)).all()) == 1


def test_fixture_files_are_present():
    names = {p.name for p in FIXTURES.iterdir()}
    assert {"hf_daily_papers.json", "arxiv_rss_cs.CL.xml", "arxiv_api_page1.xml"} <= names
    assert json.loads(fixture_bytes("hf_daily_papers.json"))[0]["paper"]["id"] == "2411.10001"


def test_feed_entities_neither_read_files_nor_explode(replay: ReplayServer, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>t</title><item><title>X &xxe; Y</title>'
        "<link>https://x.example.org/1</link></item></channel></rss>"
    )
    levels = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{levels}]>'
        '<rss version="2.0"><channel><title>t</title><item><title>&l9;</title>'
        "<link>https://x.example.org/1</link></item></channel></rss>"
    )
    replay.route("/xxe.rss", Reply(200, xxe.encode(), {"Content-Type": "application/rss+xml"}))
    replay.route("/bomb.rss", Reply(200, bomb.encode(), {"Content-Type": "application/rss+xml"}))
    settings = make_settings(replay, tmp_path)
    [record] = build_source(f"feed:{replay.url}/xxe.rss", settings).fetch({}).records
    assert "SECRET" not in record.title
    with pytest.raises(SourceError, match="malformed XML"):
        build_source(f"feed:{replay.url}/bomb.rss", settings).fetch({})


def test_huggingface_backfill_is_capped(replay: ReplayServer, tmp_path: Path):
    source = hf_source(make_settings(replay, tmp_path))
    days, notes = source.days({}, date(2020, 1, 1), TODAY)
    assert len(days) == 92 and days[-1] == TODAY
    assert notes and "92 days" in notes[0]
    assert source.days({}, date(2024, 12, 1), TODAY) == ([], [])
    assert source.days({"last_date": "garbage"}, None, TODAY)[0] == [date(2024, 11, 17), TODAY]
    assert source.days({"last_date": "2030-01-01"}, None, TODAY)[0] == [TODAY]


def test_replay_server_plays_replies_in_order_then_repeats_the_last(replay: ReplayServer):
    import httpx

    replay.route("/x", Reply(500), Reply(200, b"ok"))
    codes = [httpx.get(replay.url + "/x").status_code for _ in range(3)]
    assert codes == [500, 200, 200]
    assert httpx.get(replay.url + "/nowhere").status_code == 404
