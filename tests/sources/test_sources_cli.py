"""Issue 4 acceptance, end to end through the real `digest` command: Hugging Face and
arXiv pointed (by the URL settings) at a replay server on loopback, a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import clean_exit
from replay_server import ReplayServer, Reply, json_reply, xml

HF_PATH = "/api/daily_papers"
RSS_PATH = "/rss/cs.CL"


@pytest.fixture
def fetch_env(replay: ReplayServer) -> dict[str, str]:
    return {
        "DIGEST_SOURCES": "huggingface,arxiv:cs.CL",
        "DIGEST_HUGGINGFACE_URL": replay.url,
        "DIGEST_ARXIV_RSS_URL": replay.url + "/rss",
        "DIGEST_ARXIV_API_URL": replay.url + "/api/query",
        "DIGEST_ARXIV_MIN_INTERVAL": "0.05",
        "DIGEST_HTTP_TIMEOUT": "2",
        "DIGEST_HTTP_RETRIES": "1",
        "DIGEST_HTTP_BACKOFF": "0.01",
        "DIGEST_CONTACT_EMAIL": "ops@example.org",
    }


def fetch_json(cli: Callable, env: dict[str, str], *args: str) -> tuple[int, dict[str, dict]]:
    result = cli("fetch", "--json", *args, extra_env=env)
    assert "Traceback" not in result.stderr
    return result.code, {r["source"]: r for r in json.loads(result.stdout)}


def papers(cli: Callable, env: dict[str, str]) -> dict[str, dict]:
    result = cli("papers", "--json", extra_env=env)
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    ids = [p["id"] for p in rows]
    assert len(ids) == len(set(ids)), "a paper is stored twice"
    return {p["id"]: p for p in rows}


def test_fetch_merges_sources_once_each_then_stores_nothing_new_and_replace_updates(
    cli, replay: ReplayServer, fetch_env: dict[str, str]
):
    replay.route(HF_PATH, json_reply("hf_daily_papers.json"))
    replay.route(
        RSS_PATH,
        xml("arxiv_rss_cs.CL.xml"),
        xml("arxiv_rss_cs.CL.xml"),
        xml("arxiv_rss_cs.CL_day2.xml"),
    )

    code, first = fetch_json(cli, fetch_env)
    assert code == 0
    assert (first["huggingface"]["new"], first["huggingface"]["failed"]) == (3, False)
    # 2411.10001 is on both: new from Hugging Face, an update from arXiv; the two
    # replace items are for papers never stored, so they create nothing.
    arxiv = first["arxiv:cs.CL"]
    assert (arxiv["new"], arxiv["updated"], arxiv["skipped"]) == (1, 1, 2)
    stored = papers(cli, fetch_env)
    assert set(stored) == {"2411.10001", "2411.10002", "2411.10003", "2411.10004"}
    merged = stored["2411.10001"]
    assert merged["sources"] == ["huggingface", "arxiv:cs.CL"]
    assert merged["upvotes"] == 42 and merged["github_stars"] == 310
    assert merged["categories"] == ["cs.CL", "cs.AI", "cs.LG"]
    assert merged["hf_url"] == f"{replay.url}/papers/2411.10001"
    assert merged["url"] == "https://arxiv.org/abs/2411.10001"
    assert merged["pdf_url"] == "https://arxiv.org/pdf/2411.10001"
    assert merged["code_url"] == "https://github.com/example/sparse-attn"
    assert merged["project_url"] == "https://sparse-attn.github.io/"
    assert merged["ai_keywords"] == ["sparse attention", "long context", "language models"]
    assert merged["num_comments"] == 3

    code, second = fetch_json(cli, fetch_env)
    assert code == 0
    assert [r["new"] for r in second.values()] == [0, 0]
    assert second["huggingface"]["known"] == 3 and second["arxiv:cs.CL"]["known"] == 2
    assert papers(cli, fetch_env).keys() == stored.keys()

    code, third = fetch_json(cli, fetch_env)  # the next day's listing
    assert code == 0
    assert (third["arxiv:cs.CL"]["new"], third["arxiv:cs.CL"]["updated"]) == (1, 1)
    after = papers(cli, fetch_env)
    assert set(after) == set(stored) | {"2411.20001"}
    revised = after["2411.10004"]
    assert revised["title"] == "Retrieval Heads in Multilingual Transformers (Extended Version)"
    assert revised["first_seen"] == stored["2411.10004"]["first_seen"]  # updated, not new
    assert revised["published"] == stored["2411.10004"]["published"]

    # Every request named the project and the contact.
    assert {r.headers["user-agent"] for r in replay.requests} == {
        "digest/0.1.0 (+mailto:ops@example.org)"
    }


def test_one_failing_source_leaves_the_others_stored_and_exits_1(
    cli, replay: ReplayServer, fetch_env: dict[str, str]
):
    replay.route(HF_PATH, Reply(500, b"<html>oops</html>"))
    replay.route(RSS_PATH, xml("arxiv_rss_cs.CL.xml"))
    result = cli("fetch", extra_env=fetch_env)
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "already known" in result.stdout and "failed" in result.stdout
    assert "HTTP 500" in result.stderr
    assert set(papers(cli, fetch_env)) == {"2411.10001", "2411.10004"}

    code, reports = fetch_json(cli, fetch_env)
    assert code == 1 and reports["huggingface"]["failed"]
    assert reports["arxiv:cs.CL"]["failed"] is False


def test_truncated_json_and_invalid_xml_fail_without_touching_stored_papers(
    cli, replay: ReplayServer, fetch_env: dict[str, str]
):
    good = json_reply("hf_daily_papers.json")  # a first fetch reads yesterday and today
    replay.route(HF_PATH, good, good, json_reply("hf_truncated.json"))
    replay.route(RSS_PATH, xml("arxiv_rss_cs.CL.xml"), xml("arxiv_rss_invalid.xml"))
    code, _ = fetch_json(cli, fetch_env)
    assert code == 0
    before = papers(cli, fetch_env)
    code, reports = fetch_json(cli, fetch_env)
    assert code == 1
    assert "malformed JSON" in reports["huggingface"]["errors"][0]
    assert "malformed XML" in reports["arxiv:cs.CL"]["errors"][0]
    assert papers(cli, fetch_env) == before


def test_since_backfills_arxiv_through_the_export_api(
    cli, replay: ReplayServer, fetch_env: dict[str, str]
):
    replay.route("/api/query", xml("arxiv_api_page1.xml"), start="0")
    replay.route("/api/query", xml("arxiv_api_page2.xml"), start="2")
    env = {**fetch_env, "DIGEST_SOURCES": "arxiv:cs.CL"}
    code, reports = fetch_json(cli, env, "--since", "2024-11-01")
    assert code == 0 and reports["arxiv:cs.CL"]["new"] == 3
    stored = papers(cli, env)
    assert stored["2411.09876"]["primary_category"] == "cs.CL"
    assert not replay.hits(RSS_PATH)


def test_hostile_titles_do_not_break_the_papers_listing(
    cli, replay: ReplayServer, fetch_env: dict[str, str]
):
    hostile = [
        {"paper": {"id": "2411.30001", "title": "[/] [bold]x[/bold] <b>bold</b>\r\nBcc: a@b"}},
        {"paper": {"id": "2411.30002", "title": "W" * 10_000}},
    ]
    replay.route(HF_PATH, Reply(200, json.dumps(hostile).encode()))
    env = {**fetch_env, "DIGEST_SOURCES": "huggingface"}
    code, _ = fetch_json(cli, env)
    assert code == 0
    result = cli("papers", extra_env=env)
    assert result.code == 0 and "Traceback" not in result.stderr
    stored = papers(cli, env)
    assert stored["2411.30001"]["title"] == "[/] [bold]x[/bold] bold Bcc: a@b"
    assert len(stored["2411.30002"]["title"]) == 1000


def test_a_bad_source_spec_is_a_usage_error(cli, fetch_env: dict[str, str]):
    result = cli("fetch", extra_env={**fetch_env, "DIGEST_SOURCES": "arxiv:cs.CL;drop"})
    assert result.code == 2
    assert "DIGEST_SOURCES" in result.stderr and "Traceback" not in result.stderr


def test_a_source_error_holding_markup_is_printed_by_run_and_status(cli, tmp_path: Path):
    # The path becomes the error text; `[/]` in it crashed rich in `run` and `status`.
    missing = tmp_path / "[" / "]nope.jsonl"
    env = {"DIGEST_SOURCES": f"file:{missing}"}
    res = cli("run", "--dry-run", extra_env=env)
    clean_exit(res, 1)
    assert "failed" in res.stderr and "]nope.jsonl" in res.stderr
    clean_exit(cli("status", extra_env=env), 0)
