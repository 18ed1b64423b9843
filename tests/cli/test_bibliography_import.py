"""Issue 14: example papers from a BibTeX file or a Zotero export. Ids and titles are
found; hostile files (huge, malformed, LaTeX, missing fields, binary) give one clear
error or skipped entries reported, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest import store
from digest.bibliography import read_library, resolve_likes
from digest.errors import InputError
from digest.records import PaperRecord

BIBTEX = r"""
@string{ai = "Artificial Intelligence"}
% a comment line
@article{vaswani2017,
  title = {Attention Is All You Need},
  author = {Vaswani, Ashish and Shazeer, Noam},
  eprint = {1706.03762v7},
  archivePrefix = {arXiv},
}
@misc{doi-only, title = {Something}, doi = {10.48550/arXiv.2312.00752}}
@inproceedings{url-only, title = {Other}, url = {https://arxiv.org/abs/2401.06102v2}}
@article{journal-note, title = {X}, journal = {arXiv preprint arXiv:2305.18290}}
@article{by-title, title = {{\"U}ber {R}eward {M}odels: $\alpha$-Preference
   Optimisation}, author = {Nobody}}
@article{nothing, author = {Only An Author}, year = 2020}
@misc{broken, title = {never closed
@article{oldstyle, title = {Old}, eprint = {hep-th/9901001}}
"""


def test_bibtex_ids_titles_latex_and_skipped_entries():
    lib = read_library(BIBTEX.encode(), "refs.bib")
    assert lib.ids == ["1706.03762", "2312.00752", "2401.06102", "2305.18290", "hep-th/9901001"]
    assert lib.titles == ["Über Reward Models: α-Preference Optimisation"]
    joined = " | ".join(lib.skipped)
    assert "'nothing': no arXiv id and no title" in joined
    assert "unreadable entry" in joined and "broken" in joined


def test_titles_are_matched_against_stored_papers(engine):
    store.merge_papers(
        engine,
        [
            PaperRecord(
                id="2405.00001",
                title="Über reward models: α-preference optimisation.",
                source="t",
            )
        ],
    )
    lib = read_library(BIBTEX.encode())
    got = resolve_likes(engine, lib)
    assert got.paper_ids[-1] == "2405.00001"
    assert got.unmatched_titles == []
    assert "6 example papers from" in got.summary()


def test_zotero_csv_and_csl_json():
    csv_text = (
        '"Key","Item Type","Publication Year","Author","Title","DOI","Url","Extra"\n'
        '"AB12","preprint","2023","Rafailov, Rafael","Direct Preference Optimization",'
        '"10.48550/arXiv.2305.18290","",""\n'
        '"CD34","journalArticle","2020","X","A paper with no id","","https://example.org/x",""\n'
        '"EF56","preprint","2024","Y","","","","arXiv: 2401.06102"\n'
    )
    lib = read_library(csv_text.encode(), "zotero.csv")
    assert lib.ids == ["2305.18290", "2401.06102"]
    assert lib.titles == ["A paper with no id"]

    csl = [
        {"id": "http://arxiv.org/abs/1706.03762v5", "type": "article", "title": "Attention"},
        {"type": "article", "title": "No id here", "DOI": "10.1000/xyz"},
        "not an object",
        {"type": "article", "URL": "https://arxiv.org/pdf/2312.00752.pdf"},
    ]
    lib = read_library(json.dumps(csl).encode(), "export.json")
    assert lib.ids == ["1706.03762", "2312.00752"]
    assert lib.titles == ["No id here"]
    assert lib.skipped == ["item 3: not an object"]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"@article{a, title={x}}\n" * 300_000, "at most 4 MiB"),
        (b"\xff\xfe\x00binary", "not UTF-8"),
        (b"PK\x03\x04\x00\x00zip", "not a text file"),
        (b"", "no paper found"),
        (b"@article{a, author={Nobody}}", "no paper found"),
        (b"{" * 100_000, "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b"@misc{x, title = {unclosed", "no paper found"),
        (b'<?xml version="1.0"?><rdf:RDF></rdf:RDF>', "not well-formed XML"),
        (b'<?xml version="1.0"?><mods xmlns="http://www.loc.gov/mods/v3"/>', "not a Zotero RDF"),
        (b"<" * 100_000, "not well-formed XML"),
        (b'"Key","Title","DOI"\n"k1","",""\n', "no paper found"),
    ],
)
def test_hostile_files_get_one_clear_error(data, says):
    with pytest.raises(InputError) as caught:
        read_library(data, "bad.bib")
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_many_entries_are_refused_whole():
    data = "".join(f"@misc{{k{i}, eprint={{2401.{i:05d}}}}}\n" for i in range(6000)).encode()
    with pytest.raises(InputError, match="at most 5000"):
        read_library(data)


def test_cli_like_file_on_subscribe_and_set(cli, tmp_path, engine):
    bib = tmp_path / "refs.bib"
    bib.write_text(BIBTEX, encoding="utf-8")
    res = cli(
        "subscribe",
        "ada@example.org",
        "--interest",
        "preference optimisation",
        "--like-file",
        str(bib),
    )
    assert res.code == 0, res.stderr
    assert "refs.bib: 5 example papers from 7 entries; 1 title not among" in res.stderr
    assert "skipped entry 'nothing'" in res.stderr
    sub = store.get_subscriber(engine, "ada@example.org")
    assert sub.likes == ["1706.03762", "2312.00752", "2401.06102", "2305.18290", "hep-th/9901001"]

    more = tmp_path / "more.bib"
    more.write_text("@misc{x, eprint={2402.00001}}\n@misc{y, eprint={1706.03762}}", "utf-8")
    assert cli("set", "ada@example.org", "--like-file", str(more)).code == 0
    assert store.get_subscriber(engine, "ada@example.org").likes[-1] == "2402.00001"
    assert len(store.get_subscriber(engine, "ada@example.org").likes) == 6

    # Hostile files: one line, exit 2, nothing stored or changed.
    huge = tmp_path / "huge.bib"
    huge.write_bytes(b"@misc{a, title={x}}\n" * 300_000)
    broken = tmp_path / "broken.bib"
    broken.write_text("@misc{x, title = {never closed", "utf-8")
    for path in (huge, broken, tmp_path / "missing.bib"):
        res = cli("subscribe", "bob@example.org", "--keywords", "x", "--like-file", str(path))
        assert res.code == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.startswith("error: --like-file:") or "--like-file" in res.stderr
        assert store.get_subscriber(engine, "bob@example.org") is None
        res = cli("set", "ada@example.org", "--like-file", str(path))
        assert res.code == 2
    assert len(store.get_subscriber(engine, "ada@example.org").likes) == 6


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bibliography"
GO = "Mastering the game of Go with deep neural networks and tree search"


@pytest.mark.parametrize("name", ["zotero.bib", "zotero-csl.json", "zotero.rdf"])
def test_zotero_exports_give_the_preprints_and_the_journal_article_by_title(name, engine):
    """Zotero 7's three exports of one library: the arXiv preprint by id (from its URL,
    DOI or "arXiv:" note), the Nature article by its title, the untitled book skipped;
    the RDF's attachment, note, collection and journal record are not papers."""
    store.merge_papers(engine, [PaperRecord(id="1601.00001", title=GO + ".", source="t")])
    lib = read_library((FIXTURES / name).read_bytes(), name)
    assert lib.ids[0] == "2305.18290"
    assert "2401.99999" not in lib.ids  # the id in the RDF's note
    assert lib.titles == [GO]
    assert len(lib.skipped) == 1 and "no arXiv id and no title" in lib.skipped[0]
    got = resolve_likes(engine, lib)
    assert got.paper_ids == [*lib.ids, "1601.00001"]
    assert got.unmatched_titles == []


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("billion-laughs.rdf", "DTD or entities is not read"),
        ("external-entity.rdf", "DTD or entities is not read"),
        ("malformed.rdf", "not well-formed XML"),
        ("missing-fields.rdf", "no paper found"),
    ],
)
def test_hostile_rdf_is_refused_before_anything_is_expanded(name, says):
    data = (FIXTURES / name).read_bytes()
    with pytest.raises(InputError) as caught:
        read_library(data, name)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    assert "root:" not in str(caught.value)  # /etc/passwd never read


def test_a_huge_rdf_is_refused_by_size():
    item = (FIXTURES / "zotero.rdf").read_text().split("<rdf:Description", 1)[1]
    data = ("<rdf:RDF" + item * 2000).encode()
    with pytest.raises(InputError, match="at most 4 MiB"):
        read_library(data, "big.rdf")


def test_a_like_file_without_a_size_is_read_only_up_to_the_cap(cli, engine):
    """/dev/zero (or a pipe) has no size to check first: it was read without end,
    memory growing until the machine ran out. Now one line, exit 2, nothing stored."""
    res = cli("subscribe", "bob@example.org", "--keywords", "x", "--like-file", "/dev/zero")
    assert res.code == 2 and "Traceback" not in res.stderr
    assert "error: --like-file: zero is over 4 MiB; at most 4 MiB is read" in res.stderr
    assert store.get_subscriber(engine, "bob@example.org") is None
