"""The JSON Lines source: only id and title are required; a bad line is reported by
its number and skipped without losing the good ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import clean_exit, strict_json

from digest.errors import SourceError
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


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def good(pid: str) -> bytes:
    return json.dumps({"id": pid, "title": f"Good paper {pid}"}).encode()


def test_hostile_lines_are_skipped_one_by_one_and_the_good_ones_kept(cli, tmp_path: Path):
    feed = write_lines(
        tmp_path / "hostile.jsonl",
        [
            b"\xef\xbb\xbf" + good("bom-first"),  # a byte-order mark: still line 1
            b"[" * 100_000,  # RecursionError used to fail the whole source
            json.dumps({"id": "big", "title": "Huge", "upvotes": 10**30}).encode(),
            good("middle"),
            json.dumps({"id": "neg", "title": "Negative", "upvotes": -5}).encode(),
            json.dumps({"id": {"a": 1}, "title": "Object id"}).encode(),
            json.dumps({"id": "x" * 300, "title": "Id too long to keep apart"}).encode(),
            json.dumps({"id": "js", "title": "Bad link", "code_url": "javascript:x"}).encode(),
            good("last"),
        ],
    )
    res = cli("fetch", "--json", extra_env={"DIGEST_SOURCES": f"file:{feed}"})
    clean_exit(res, 0)
    report = strict_json(res.stdout)[0]
    assert report["new"] == 3 and not report["failed"]
    for n in (2, 3, 5, 6, 7, 8):
        assert any(f"line {n}:" in e for e in report["errors"]), (n, report["errors"])
    assert any("code_url" in e for e in report["errors"])
    stored = {p["id"] for p in strict_json(cli("papers", "--json").stdout)}
    assert stored == {"bom-first", "middle", "last"}


def test_a_file_with_no_readable_line_is_a_failed_source(tmp_path: Path):
    # The wrong file (here a passwd-like one) used to "succeed" with 0 papers, exit 0.
    feed = write_lines(tmp_path / "wrong.jsonl", [b"root:x:0:0::/root:/bin/sh", b"{nope"])
    with pytest.raises(SourceError, match="none of the 2"):
        FileSource(feed).fetch({})


def test_file_source_counts_are_bounded_in_process(tmp_path: Path):
    feed = write_lines(
        tmp_path / "n.jsonl",
        [
            json.dumps({"id": "a", "title": "A", "upvotes": "99999999999"}).encode(),
            json.dumps({"id": "b", "title": "B", "upvotes": "999999999999"}).encode(),
            json.dumps({"id": 7, "title": "Numeric id"}).encode(),
        ],
    )
    batch = FileSource(feed).fetch({})
    assert [(r.id, r.upvotes) for r in batch.records] == [("a", 99999999999), ("7", None)]
    assert len(batch.warnings) == 1 and "line 2" in batch.warnings[0]


def test_a_paper_already_stored_from_another_source_is_known_not_updated(tmp_path, cli):
    """The fetch report for an operator: `new` is stored for the first time, `updated`
    a stored paper whose fields changed, `known` one stored already with nothing new,
    whichever source stored it first (the second source is still recorded)."""
    paper = {"id": "2411.10001", "title": "Sparse attention", "authors": ["Ada"]}
    first = tmp_path / "first.jsonl"
    first.write_text(json.dumps(paper) + "\n", encoding="utf-8")
    second = tmp_path / "second.jsonl"
    lines = [paper, {"id": "2411.10002", "title": "Dense attention"}]
    second.write_text("".join(json.dumps(p) + "\n" for p in lines), encoding="utf-8")
    both = {"DIGEST_SOURCES": f"file:{first},file:{second}"}
    res = cli("fetch", "--json", extra_env=both)
    clean_exit(res, 0)
    counts = [(r["new"], r["updated"], r["known"]) for r in strict_json(res.stdout)]
    assert counts == [(1, 0, 0), (1, 0, 1)]  # was (1, 1, 0) for the second source
    stored = {p["id"]: p for p in strict_json(cli("papers", "--json").stdout)}
    assert stored["2411.10001"]["sources"] == [f"file:{first}", f"file:{second}"]
    # A second source that does bring something new updates the paper.
    richer = {**paper, "abstract": "We sparsify attention.", "upvotes": 5}
    second.write_text(json.dumps(richer) + "\n", encoding="utf-8")
    res = cli("fetch", "--json", extra_env={"DIGEST_SOURCES": f"file:{second}"})
    clean_exit(res, 0)
    assert [(r["new"], r["updated"], r["known"]) for r in strict_json(res.stdout)] == [(0, 1, 0)]
