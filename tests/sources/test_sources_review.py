"""Found by a hands-on review of the sources against crafted responses on a real
loopback server: each test is a response a real (or broken) server sends, and what
the store must end up holding."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import run_cli
from replay_server import ReplayServer, Reply, fixture_bytes, xml
from test_sources import API_PATH, HF_PATH, RSS_PATH, TODAY, arxiv_source, hf_source, make_settings

from digest import store
from digest.errors import SourceError
from digest.sources import build_source
from digest.sources.feed import FeedSource
from digest.sources.http import HttpClient

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


def rss(*items: tuple[str, str, str]) -> Reply:
    body = "".join(
        f"<item><title>{title}</title><link>https://lab.example/{guid}</link>"
        f"<guid>{guid}</guid><pubDate>{when}</pubDate></item>"
        for title, guid, when in items
    )
    return Reply(
        200,
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Lab</title>{body}'
        "</channel></rss>".encode(),
        {"Content-Type": "application/rss+xml"},
    )


def test_a_date_in_the_future_is_no_publication_date(replay: ReplayServer, tmp_path: Path):
    """One entry dated 2126 (a typo, a placeholder, or on purpose) became the newest
    paper of every run: recency is measured from the newest paper, so every other
    paper's recency was nil for every subscriber until 2126."""
    tomorrow = date.today() + timedelta(days=1)
    replay.route(
        "/lab.xml",
        rss(
            ("Typo year", "typo", "Mon, 02 Jan 2126 15:04:05 GMT"),
            ("Tomorrow in Tokyo", "tokyo", f"{tomorrow:%a, %d %b %Y} 01:00:00 GMT"),
            ("Real", "real", "Mon, 18 Nov 2024 10:00:00 GMT"),
        ),
    )
    settings = make_settings(replay, tmp_path)
    batch = FeedSource(replay.url + "/lab.xml", HttpClient(settings), settings).fetch({})
    published = {r.title: r.published for r in batch.records}
    assert published == {
        "Typo year": None,
        "Tomorrow in Tokyo": tomorrow,
        "Real": date(2024, 11, 18),
    }


def test_huggingface_publishedat_in_the_future_is_dropped(replay: ReplayServer, tmp_path: Path):
    item = {"paper": {"id": "2411.10001", "title": "T", "publishedAt": "2999-01-01T00:00:00Z"}}
    replay.route(HF_PATH, Reply(200, json.dumps([item]).encode()))
    records = hf_source(make_settings(replay, tmp_path), today=TODAY).fetch({}).records
    assert records and {r.published for r in records} == {None}


def test_huggingface_fields_of_another_json_type_are_no_text(replay: ReplayServer, tmp_path: Path):
    """A changed API shape (a title object, a list summary, author objects in a list)
    was stored as Python reprs: a paper titled "{'en': 'x'}" mailed to subscribers."""
    items = [
        {"paper": {"id": "2411.10001", "title": {"en": "Shape change"}, "summary": "s"}},
        {
            "paper": {
                "id": "2411.10002",
                "title": "Good title",
                "summary": ["a", "list"],
                "ai_summary": {"text": "x"},
                "authors": [{"name": {"first": "Ada"}}, {"name": "Alan Turing"}, {"name": True}],
                "ai_keywords": [["nested"], "kept"],
            }
        },
    ]
    replay.route(HF_PATH, Reply(200, json.dumps(items).encode()))
    batch = hf_source(make_settings(replay, tmp_path), today=TODAY).fetch({})
    [good, _again] = batch.records
    assert (good.id, good.title, good.abstract, good.ai_summary) == (
        "2411.10002",
        "Good title",
        "",
        None,
    )
    assert good.authors == ["Alan Turing"] and good.ai_keywords == ["kept"]
    assert any("2411.10001: no title" in w for w in batch.warnings), batch.warnings


JOURNAL_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Journal</title><id>tag:journal.example,2024:feed</id>
  <updated>2024-11-18T00:00:00Z</updated>
  <entry>
    <title>Sparse Attention for Long-Context Language Models (journal version)</title>
    <id>tag:journal.example,2024:a1</id>
    <link rel="alternate" href="https://doi.org/10.48550/arXiv.2411.10001"/>
    <updated>2024-11-18T00:00:00Z</updated>
  </entry>
  <entry>
    <title>A paper whose arXiv version is a related link</title>
    <id>tag:journal.example,2024:a2</id>
    <link rel="alternate" href="https://journal.example/articles/a2"/>
    <link rel="related" href="https://arxiv.org/abs/2411.10002v2"/>
    <updated>2024-11-18T00:00:00Z</updated>
  </entry>
</feed>"""


def test_a_journal_entry_for_an_arxiv_paper_is_the_same_paper(
    replay: ReplayServer, tmp_path: Path, source_engine
):
    """arXiv's own DOI (10.48550/arXiv.ID) and an arXiv link other than the entry's
    main one were not read as the arXiv id: the paper got a second row (`doi:...`,
    `tag:...`) and a subscriber following both feeds was sent it twice."""
    replay.route(RSS_PATH, xml("arxiv_rss_cs.CL.xml"))
    replay.route(
        "/journal.atom", Reply(200, JOURNAL_ATOM, {"Content-Type": "application/atom+xml"})
    )
    settings = make_settings(replay, tmp_path)
    store.merge_papers(source_engine, arxiv_source(settings).fetch({}).records)
    before = {p.id for p in store.list_papers(source_engine)}
    journal = build_source(f"feed:{replay.url}/journal.atom", settings).fetch({})
    assert [r.id for r in journal.records] == ["2411.10001", "2411.10002"]
    store.merge_papers(source_engine, journal.records)
    assert {p.id for p in store.list_papers(source_engine)} == before | {"2411.10002"}


def test_a_body_that_does_not_decompress_is_a_source_error_naming_the_url(
    replay: ReplayServer, tmp_path: Path
):
    """`Content-Encoding: gzip` on a body that is no gzip (a misconfigured proxy, a
    truncated cache) raised httpx's DecodingError out of the client that promises
    only SourceError: the fetch failed with "DecodingError: Error -3 ..." naming no
    URL, and it was not retried."""
    bad = Reply(200, b"not gzip at all", {"Content-Encoding": "gzip"})
    replay.route("/bad.xml", bad, rss(("Fine", "fine", "Mon, 18 Nov 2024 10:00:00 GMT")))
    settings = make_settings(replay, tmp_path)
    batch = FeedSource(replay.url + "/bad.xml", HttpClient(settings), settings).fetch({})
    assert [r.title for r in batch.records] == ["Fine"]
    replay.route("/always-bad.xml", bad)
    with pytest.raises(SourceError, match=r"cannot decode .*/always-bad\.xml.*gzip.*3 attempts"):
        FeedSource(replay.url + "/always-bad.xml", HttpClient(settings), settings).fetch({})


@pytest.mark.parametrize("where", ["redirect", "configured"])
def test_a_host_name_idna_refuses_is_a_source_error_naming_the_url(
    replay: ReplayServer, tmp_path: Path, where: str
):
    """A host label of more than 63 characters (in a redirect's Location, or in the
    configured URL) raised a bare UnicodeError from the IDNA codec out of the client:
    "UnicodeError: encoding with 'idna' codec failed", naming no URL."""
    bad_host = "http://" + "a" * 70 + ".example/feed.xml"
    replay.route("/moved.xml", Reply(302, b"", {"Location": bad_host}))
    url = replay.url + "/moved.xml" if where == "redirect" else bad_host
    settings = make_settings(replay, tmp_path)
    with pytest.raises(SourceError, match=r"(moved\.xml|aaaa\.example/feed\.xml).*host name"):
        FeedSource(url, HttpClient(settings), settings).fetch({})


def fetch_within_a_minute(env: dict[str, str], source: str):
    """`digest fetch --json` of `source`, failed when it has not ended after 60 s (a
    parser stalled on hostile markup) or did not succeed."""
    started = time.monotonic()
    try:
        res = run_cli(["fetch", "--json"], {**env, "DIGEST_SOURCES": source}, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"digest fetch still parsing after {time.monotonic() - started:.0f} s")
    assert res.code == 0, res.stderr[-2000:]
    return res


def test_a_summary_of_script_openers_costs_no_minutes_of_cpu(replay: ReplayServer, env):
    """An Atom summary (type="text") of 400 kB of `<script>`: the lazy regex that
    drops script elements rescanned up to 100,000 characters per opener, and this one
    entry held `digest fetch` (and the scheduler's fetch lock) for minutes. The
    command gets 60 s here; it needs well under one."""
    summary = "&lt;script&gt;" * 50_000
    body = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Lab</title><id>tag:lab,2024:f</id><updated>2024-11-18T00:00:00Z</updated>"
        "<entry><title>Script soup</title><id>tag:lab,2024:1</id>"
        "<updated>2024-11-18T00:00:00Z</updated>"
        f'<summary type="text">{summary} real words</summary></entry></feed>'
    ).encode()
    replay.route("/soup.atom", Reply(200, body, {"Content-Type": "application/atom+xml"}))
    source = f"feed:{replay.url}/soup.atom"
    res = fetch_within_a_minute(env, source)
    [report] = json.loads(res.stdout)
    assert report["new"] == 1 and not report["failed"]


def cdata_item(description: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Lab</title>'
        "<item><title>One</title><guid>lab-1</guid>"
        f"<description><![CDATA[{description}]]></description></item></channel></rss>"
    ).encode()


def test_a_description_of_comment_openers_does_not_stall_the_parser(replay: ReplayServer, env):
    """1.2 MB of `<!--` in one HTML description: feedparser's sgmllib sanitizer is
    quadratic on it (218 s measured), a stalled `digest fetch` and scheduler fetch.
    The command gets 60 s here; it needs about one."""
    body = cdata_item("<!--" * 300_000)
    replay.route("/comments.xml", Reply(200, body, {"Content-Type": "application/rss+xml"}))
    source = f"feed:{replay.url}/comments.xml"
    res = fetch_within_a_minute(env, source)
    assert json.loads(res.stdout)[0]["new"] == 1


def test_html_and_journal_markup_in_a_description_become_plain_text(
    replay: ReplayServer, tmp_path: Path
):
    """What feedparser's sanitizer did, `clean_text` does: comments, scripts and tags
    (HTML, and the namespaced JATS/MathML of journal feeds) go, text stays."""
    description = (
        "<!-- teaser --><p>We grow <jats:italic>E. coli</jats:italic> in "
        "H<sub>2</sub>O<script>track()</script> at <mml:mi>T</mml:mi> &lt; 40&#176;C."
        "</p><jats:p>Second</jats:p>"
    )
    replay.route("/j.xml", Reply(200, cdata_item(description), {"Content-Type": "text/xml"}))
    settings = make_settings(replay, tmp_path)
    [record] = FeedSource(replay.url + "/j.xml", HttpClient(settings), settings).fetch({}).records
    assert record.abstract == "We grow E. coli in H2O at T < 40°C. Second"
