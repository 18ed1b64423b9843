"""`digest subscribe/set --interest --like`, `subscribers --json`, `check-query
--interest/--like --json`, `status` naming the ranking, and the upgrade of a 0001
database with subscribers in it (real `digest` processes, a real SQLite file)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import REPO, clean_exit, strict_json

from digest import store
from digest.matching import load_embedder

CORPUS = REPO.parent / "shared" / "corpus" / "seed_papers_enriched.jsonl"
REWARD = "Reward models and preference optimisation (RLHF, DPO). Not interested in jailbreaks."


@pytest.fixture
def corpus_file(tmp_path):
    """Sixty real papers as a `file:` source (id = arXiv id)."""
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is not here")
    path = tmp_path / "papers.jsonl"
    lines = []
    for line in CORPUS.read_text().splitlines():
        d = json.loads(line)
        if d.get("arxiv_id"):
            lines.append(
                json.dumps({"id": d["arxiv_id"], "title": d["title"], "abstract": d["abstract"]})
            )
        if len(lines) == 60:
            break
    path.write_text("\n".join(lines) + "\n")
    return path


def test_subscribe_with_an_interest_likes_or_both(cli):
    clean_exit(cli("subscribe", "ada@example.org", "--interest", REWARD), 0)
    clean_exit(
        cli("subscribe", "bo@example.org", "-k", "diffusion", "--interest", "text-to-image"), 0
    )
    clean_exit(
        cli(
            "subscribe",
            "cy@example.org",
            "--like",
            "2401.10580, arXiv:2402.08925v2,https://arxiv.org/abs/hep-th/9901001",
        ),
        0,
    )
    rows = {s["email"]: s for s in strict_json(cli("subscribers", "--json").stdout)}
    assert (
        rows["ada@example.org"]["interest"] == REWARD and rows["ada@example.org"]["keywords"] == ""
    )
    assert rows["bo@example.org"]["keywords"] == "diffusion"
    assert rows["cy@example.org"]["likes"] == ["2401.10580", "2402.08925", "hep-th/9901001"]
    assert rows["cy@example.org"]["interest"] is None

    clean_exit(cli("set", "ada@example.org", "--like", "2401.10580", "--interest", ""), 0)
    ada = {s["email"]: s for s in strict_json(cli("subscribers", "--json").stdout)}[
        "ada@example.org"
    ]
    assert ada["interest"] is None and ada["likes"] == ["2401.10580"]


@pytest.mark.parametrize(
    "args",
    [
        ["--like", "not-an-id"],
        ["--like", "2401.10580,<script>"],
        ["--interest", "no"],
        ["--interest", "x" * 20000],
        ["--interest", "   "],
        [],
    ],
)
def test_bad_interests_and_likes_are_one_line_and_nothing_is_stored(cli, args):
    res = cli("subscribe", "ed@example.org", *args)
    clean_exit(res, 2)
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1
    assert strict_json(cli("subscribers", "--json").stdout) == []


def test_set_refuses_to_empty_a_profile(cli):
    clean_exit(cli("subscribe", "ada@example.org", "--interest", REWARD), 0)
    res = cli("set", "ada@example.org", "--interest", "")
    clean_exit(res, 2)
    rows = strict_json(cli("subscribers", "--json").stdout)
    assert rows[0]["interest"] == REWARD


def test_check_query_lists_every_paper_it_would_consider(cli, corpus_file):
    source = {"DIGEST_SOURCES": f"file:{corpus_file}"}
    clean_exit(cli("fetch", extra_env=source), 0)
    res = cli("check-query", "--interest", REWARD, "--since", "1990-01-01", "--json")
    clean_exit(res, 0)
    found = strict_json(res.stdout)
    assert found and all(set(f) >= {"id", "title", "score", "explanation"} for f in found)
    scores = [f["score"] for f in found]
    assert scores == sorted(scores, reverse=True)
    assert all("similar to your interest" in f["explanation"] for f in found)
    assert not any("jailbreak" in f["title"].lower() for f in found)

    liked = found[0]["id"]
    with_like = strict_json(
        cli(
            "check-query", "--interest", REWARD, "--like", liked, "--since", "1990-01-01", "--json"
        ).stdout
    )
    assert [f["id"] for f in with_like] != [f["id"] for f in found]
    assert liked not in [f["id"] for f in with_like]

    both = strict_json(
        cli(
            "check-query", "preference", "--interest", REWARD, "--since", "1990-01-01", "--json"
        ).stdout
    )
    assert both and all(f["explanation"].startswith("matched: preference") for f in both)

    text = cli("check-query", "--interest", REWARD, "--since", "1990-01-01")
    clean_exit(text, 0)
    assert "excluding 'jailbreaks'" in text.stdout and "ranking: " in text.stdout
    clean_exit(cli("check-query", "--since", "1990-01-01"), 2)


def test_status_says_which_ranking_is_active(cli):
    off = strict_json(cli("status", "--json", extra_env={"DIGEST_SEMANTIC": "off"}).stdout)
    assert off["ranking"] == {"ranking": "lexical", "model": None, "reason": "DIGEST_SEMANTIC=off"}
    on = strict_json(cli("status", "--json").stdout)["ranking"]
    if load_embedder().embedder is None:
        assert on["ranking"] == "lexical" and "not installed" in on["reason"]
    else:
        assert on["ranking"] == "semantic" and on["model"]
    res = cli("status")
    assert "interest ranking: " in res.stdout


def test_an_edition_ranks_interests_with_the_model_off(cli, corpus_file, smtp_sink):
    """DIGEST_SEMANTIC=off: the lexical ranking runs, end to end."""
    env = {"DIGEST_SOURCES": f"file:{corpus_file}", "DIGEST_SEMANTIC": "off"}
    clean_exit(cli("subscribe", "ada@example.org", "--interest", REWARD, extra_env=env), 0)
    clean_exit(cli("run", "--now", extra_env=env), 0)
    messages = smtp_sink.messages()
    assert len(messages) == 1
    body = messages[0].get_body(("plain",)).get_content()
    assert "similar to your interest" in body


def test_upgrade_from_0001_keeps_subscribers_and_reads_them_as_before(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = store.make_engine(url)
    store.upgrade(engine, "0001")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute(
            "INSERT INTO subscriber (email, status, keywords, max_papers, timezone, send_at,"
            " frequency, notify_empty, bounces, created_at, token_version)"
            " VALUES ('old@example.org', 'active', 'diffusion -video', 7, 'UTC', '07:00',"
            " 'daily', 0, 0, '2026-01-01 00:00:00', 0)"
        )
    store.upgrade(engine)
    assert store.current_revision(engine) == store.HEAD  # 0003 or a later revision
    sub = store.get_subscriber(engine, "old@example.org")
    assert sub is not None and sub.keywords == "diffusion -video" and sub.max_papers == 7
    assert sub.interest is None and sub.likes == []
    assert not store.any_interest(engine)
    store.downgrade(engine, "0001")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT keywords FROM subscriber").fetchall() == [("diffusion -video",)]
    engine.dispose()
