"""Titles from CSL JSON, CSV, Zotero RDF and RIS are plain text, not LaTeX: they went
through the LaTeX reader BibTeX titles need, which took `%` for a comment and dropped
`&`, `$`, `_` and `#`, so "Reaching 99% accuracy" was looked up as "Reaching 99" and
never matched the stored paper. BibTeX titles still have their LaTeX rendered."""

from __future__ import annotations

import json

import pytest

from digest import store
from digest.bibliography import read_library, resolve_likes
from digest.records import PaperRecord

TITLES = ["Reaching 99% accuracy with tiny_models", "Robots & Humans: a $100 study #1"]


def files() -> dict[str, bytes]:
    return {
        "x.json": json.dumps([{"title": t} for t in TITLES]).encode(),
        "x.csv": (
            '"Key","Title"\n' + "".join(f'"k{i}","{t}"\n' for i, t in enumerate(TITLES))
        ).encode(),
        "x.ris": "".join(f"TY  - JOUR\nTI  - {t}\nER  - \n" for t in TITLES).encode(),
        "x.rdf": (
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:z="http://www.zotero.org/namespaces/export#" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/">'
            + "".join(
                f"<rdf:Description><z:itemType>journalArticle</z:itemType>"
                f"<dc:title>{t.replace('&', '&amp;')}</dc:title></rdf:Description>"
                for t in TITLES
            )
            + "</rdf:RDF>"
        ).encode(),
    }


@pytest.mark.parametrize("name", ["x.json", "x.csv", "x.ris", "x.rdf"])
def test_plain_titles_keep_percent_ampersand_dollar_and_underscore(engine, name):
    store.merge_papers(
        engine,
        [PaperRecord(id=f"2405.0000{i}", title=t, source="t") for i, t in enumerate(TITLES)],
    )
    library = read_library(files()[name], name)
    assert library.titles == TITLES
    assert resolve_likes(engine, library).paper_ids == ["2405.00000", "2405.00001"]


def test_bibtex_titles_still_render_latex():
    data = rb"@article{a, title = {{\"U}ber 99\% of $\alpha$-models \& more}}"
    assert read_library(data, "x.bib").titles == ["Über 99% of α-models & more"]
