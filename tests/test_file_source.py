"""The JSON Lines source: only id and title are required; a bad line is reported by
its number and skipped without losing the good ones."""

from __future__ import annotations

import json

from digest.records import canonical_arxiv_id
from digest.sources.file import FileSource, sample_path


def test_bad_lines_are_reported_and_good_ones_kept(tmp_path, cli):
    feed = tmp_path / "feed.jsonl"
    lines = [
        json.dumps({"id": "a-1", "title": "Good paper one", "unknown": 1}),
        "{not json",
        json.dumps({"id": "a-2"}),
        json.dumps({"id": "a-3", "title": "Good paper three", "published": "last week"}),
        json.dumps({"id": "a-4", "title": "Line\r\nBreak <b>bold</b> &amp; more", "upvotes": 7}),
        json.dumps(["not", "an", "object"]),
    ]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = cli("fetch", extra_env={"DIGEST_SOURCES": f"file:{feed}"})
    assert res.code == 0, res.stderr
    for n in (2, 3, 4, 6):
        assert f"line {n}" in res.stderr
    papers = json.loads(cli("papers", "--json").stdout)
    by_id = {p["id"]: p for p in papers}
    assert set(by_id) == {"a-1", "a-4"}
    assert by_id["a-4"]["title"] == "Line Break <b>bold</b> &amp; more"  # plain text
    assert by_id["a-4"]["upvotes"] == 7
    again = cli("fetch", "--json", extra_env={"DIGEST_SOURCES": f"file:{feed}"})
    report = json.loads(again.stdout)
    assert report[0]["new"] == 0 and report[0]["known"] == 2


def test_missing_file_is_a_failed_source(tmp_path, cli):
    res = cli("fetch", extra_env={"DIGEST_SOURCES": f"file:{tmp_path / 'nope.jsonl'}"})
    assert res.code == 1
    assert "Traceback" not in res.stderr


def test_bundled_sample_has_about_fifty_real_papers_with_stable_ids():
    batch = FileSource(sample_path(), name="sample").fetch({})
    assert not batch.warnings
    assert 40 <= len(batch.records) <= 60
    for rec in batch.records:
        # Real arXiv ids (tools/build_sample.py), so links point at the real papers.
        assert canonical_arxiv_id(rec.id) == rec.id
        assert rec.url == f"https://arxiv.org/abs/{rec.id}" and rec.authors
    assert len({r.id for r in batch.records}) == len(batch.records)
