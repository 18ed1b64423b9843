"""Found by a hands-on review of the sources against crafted responses on a real
loopback server: each test is a response a real (or broken) server sends, and what
the store must end up holding."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from replay_server import ReplayServer, Reply, fixture_bytes
from test_sources import API_PATH, arxiv_source, make_settings

EMPTY_API_PAGE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<feed xmlns="http://www.w3.org/2005/Atom">\n'
    b"  <title>ArXiv Query</title><id>http://arxiv.org/api/x</id>\n"
    b'  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">'
    b"3</opensearch:totalResults>\n</feed>\n"
)


def atom(body: bytes) -> Reply:
    return Reply(200, body, {"Content-Type": "application/atom+xml"})


def test_an_empty_export_api_page_before_the_total_is_asked_again(
    replay: ReplayServer, tmp_path: Path
):
    """arXiv's export API now and then answers a page with no entries although its
    totalResults says more are there. The backfill took that as the end and reported
    success with the rest of the range silently missing; it must ask for the page
    again."""
    replay.route(API_PATH, atom(fixture_bytes("arxiv_api_page1.xml")), start="0")
    replay.route(
        API_PATH, atom(EMPTY_API_PAGE), atom(fixture_bytes("arxiv_api_page2.xml")), start="2"
    )
    batch = arxiv_source(make_settings(replay, tmp_path)).fetch({}, since=date(2024, 11, 1))
    assert {r.id for r in batch.records} == {"2411.10001", "2411.09876", "2411.08000"}
    assert [h.query["start"] for h in replay.hits(API_PATH)] == ["0", "2", "2"]


def test_an_export_api_that_keeps_answering_empty_pages_says_the_backfill_is_short(
    replay: ReplayServer, tmp_path: Path
):
    replay.route(API_PATH, atom(fixture_bytes("arxiv_api_page1.xml")), start="0")
    replay.route(API_PATH, atom(EMPTY_API_PAGE), start="2")
    batch = arxiv_source(make_settings(replay, tmp_path)).fetch({}, since=date(2024, 11, 1))
    assert {r.id for r in batch.records} == {"2411.10001", "2411.09876"}
    assert any("2 of 3" in w and "empty" in w for w in batch.warnings), batch.warnings
