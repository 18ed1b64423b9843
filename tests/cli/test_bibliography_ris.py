"""A RIS export (Mendeley, EndNote, Zotero, Google Scholar) as a library: it was read
as BibTeX and refused with "no entry with an arXiv id or a title" although it had
both. Now it is read; a hostile one gives one clear line or skipped entries."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, clean_exit

from digest.bibliography import read_library
from digest.errors import InputError

RIS = FIXTURES / "bibliography" / "mendeley.ris"


def test_a_ris_export_gives_its_ids_and_titles():
    lib = read_library(RIS.read_bytes(), "mendeley.ris")
    assert lib.ids == ["2305.18290"]
    assert lib.titles == ["Mastering the game of Go with deep neural networks and tree search"]
    assert lib.entries == 3
    assert any("no arXiv id and no title" in s for s in lib.skipped)


def test_like_file_takes_a_ris_export(cli, tmp_path: Path):
    clean_exit(cli("subscribe", "ada@example.org", "--keywords", "diffusion"), 0)
    res = cli("set", "ada@example.org", "--like-file", str(RIS))
    clean_exit(res, 0)
    assert "1 example paper from 3 entries" in res.stderr
    assert '"2305.18290"' in cli("subscribers", "--json").stdout


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("TY  - JOUR\nTI  - <script>alert(1)</script>\n", "no paper"),  # never closed: no ER
        ("TY  - JOUR\nER  - \n" * 6000, "at most 5000"),
        ("TY  - JOUR\nAU  - \x1b[2J\x07\nER  - \n", "no paper"),
    ],
)
def test_hostile_ris_is_refused_with_one_line(text: str, problem: str):
    with pytest.raises(InputError, match=problem) as caught:
        read_library(text.encode(), "x.ris")
    assert "\n" not in str(caught.value)
    assert "\x1b" not in str(caught.value)


def test_a_ris_title_with_markup_is_kept_as_text():
    data = b"TY  - JOUR\nTI  - Robots <b>now</b> then\nER  - \n"
    assert read_library(data, "x.ris").titles == ["Robots <b>now</b> then"]


def test_the_upload_forms_offer_ris_files(settings, engine):
    """The file pickers' `accept` list named no .ris: a browser greyed such files out."""
    import re
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from digest.web import create_app

    with TestClient(create_app(settings, engine)) as client:
        page = client.get("/").text
    accept = re.search(r'id="library"[^>]*accept="([^"]+)"', page).group(1)
    assert ".ris" in accept.split(",")
    assert "RIS" in page


def test_a_record_left_open_is_reported_not_dropped_in_silence(cli, tmp_path: Path):
    """A truncated export (the upload cut short, a hand-edited file): rispy drops the
    record that has no `ER  - ` line, and the import said nothing of it, so a
    paper went missing with nothing to tell why."""
    clean_exit(cli("subscribe", "ada@example.org", "--keywords", "diffusion"), 0)
    cut = tmp_path / "cut.ris"
    cut.write_bytes(RIS.read_bytes() + b"TY  - JOUR\nTI  - Attention Is All You Need\n")
    res = cli("set", "ada@example.org", "--like-file", str(cut))
    clean_exit(res, 0)
    assert "from 4 entries" in res.stderr
    assert "skipped a record with no end line (ER  - ), not read" in res.stderr
    only_open = b"TY  - JOUR\nTI  - Attention Is All You Need\n"
    with pytest.raises(InputError, match=r"no paper found.*\(a record with no end line"):
        read_library(only_open, "x.ris")
