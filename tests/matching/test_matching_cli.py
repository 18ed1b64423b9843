"""The profile language through the real `digest` command: check-query, preview
explanations, and subscribe refusing a bad query before anything is stored."""

from __future__ import annotations

import json


def test_check_query_explains_and_lists_matches_in_rank_order(cli) -> None:
    assert cli("fetch").code == 0
    res = cli("check-query", "(LLM OR diffusion OR robot*) -survey", "--json")
    assert res.code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows, "the bundled sample has LLM and diffusion papers"
    assert set(rows[0]) >= {"id", "title", "score", "explanation"}
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(r["explanation"].startswith("matched: ") for r in rows)
    assert any("LLM" in r["explanation"] for r in rows)
    assert all("survey" not in r["title"].lower() for r in rows)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))

    res = cli("check-query", "RL, topic:speech", "--since", "2000-01-01")
    assert res.code == 0, res.stderr
    assert "understood as:" in res.stdout
    assert "reinforcement learning" in res.stdout  # the synonym it expanded to
    assert "topic speech" in res.stdout
    assert "matched " in res.stdout

    res = cli("check-query", "*", "--since", "2999-01-01", "--json")
    assert res.code == 0 and json.loads(res.stdout) == []


def test_check_query_invalid_exits_2_with_position(cli) -> None:
    res = cli("check-query", "diffusion AND (robot OR", "--json")
    assert res.code == 2
    assert "Traceback" not in res.stderr
    assert "position 21" in res.stderr and "^" in res.stderr
    assert res.stdout == ""
    bad_date = cli("check-query", "x", "--since", "yesterday")
    assert bad_date.code == 2 and "--since" in bad_date.stderr


def test_preview_keywords_shows_explanations(cli) -> None:
    res = cli("preview", "--keywords", "LLM, robot*", "--format", "text")
    assert res.code == 0, res.stderr
    assert "matched: LLM" in res.stdout
    assert "robot*" in res.stdout


def test_subscribe_uses_the_language_and_refuses_bad_queries(cli) -> None:
    bad = cli("subscribe", "ada@example.org", "--keywords", 'diffusion, "unclosed')
    assert bad.code == 2 and "unterminated quote" in bad.stderr and "position 11" in bad.stderr
    assert json.loads(cli("subscribers", "--json").stdout) == []
    good = '(LLM OR "language model") AND reasoning -survey, topic:robot-learning, cat:cs.RO'
    ok = cli("subscribe", "ada@example.org", "--keywords", good)
    assert ok.code == 0, ok.stderr
    [stored] = json.loads(cli("subscribers", "--json").stdout)
    assert stored["keywords"] == good


def test_editions_use_the_language_and_survive_a_legacy_profile(engine, settings) -> None:
    from digest import pipeline, store
    from digest.models import Digest, Subscriber
    from digest.sources.file import FileSource, sample_path

    store.merge_papers(engine, FileSource(sample_path(), name="sample").fetch({}).records)
    subs = [
        store.add_subscriber(engine, Subscriber(email=email, keywords=profile, max_papers=5))
        for email, profile in [
            ("new@example.org", "(LLM OR diffusion) -survey, topic:robot-learning"),
            ("old@example.org", "LLM: alignment, foo:bar"),  # saved before the language
        ]
    ]
    report = pipeline.build_editions(engine, settings, subs)
    assert report.built == 2
    rows = {d.recipient: d for d in store.digests_for_edition(engine)}
    assert isinstance(rows["new@example.org"], Digest)
    explanations = rows["new@example.org"].explanations
    assert 0 < len(explanations) <= 5
    assert all(e["why"].startswith("matched: ") for e in explanations.values())
    assert rows["old@example.org"].paper_ids  # read as the phrases it was written as


def test_check_query_takes_a_leading_minus_as_the_query(cli) -> None:
    # `-survey` is the language's exclusion; the CLI used to read it as an unknown option.
    assert cli("fetch").code == 0
    res = cli("check-query", "-survey", "--since", "2000-01-01", "--json")
    assert res.code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows and all("survey" not in r["title"].lower() for r in rows)
    typo = cli("check-query", "--jsn", "diffusion")
    assert typo.code == 2 and "Traceback" not in typo.stderr
