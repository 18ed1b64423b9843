"""The manage page's library upload in real Chromium: choose a Zotero RDF export,
press the button, see what was added and the example papers field filled; then a
file over 64 KiB: the page says it is too big and nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from web_served import served

from digest import store, subscriptions
from digest.records import PaperRecord
from digest.tokens import make_token

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bibliography"
GO = "Mastering the game of Go with deep neural networks and tree search"

pytestmark = pytest.mark.chromium


def test_upload_a_zotero_library_on_the_manage_page(settings, engine, browser, tmp_path):
    store.merge_papers(engine, [PaperRecord(id="1601.00001", title=GO, source="t")])
    ada = subscriptions.subscribe(engine, settings, "ada@example.org", "", interest="go engines")
    token = make_token(settings.secret_key, "manage", ["ada@example.org", ada.id])
    big = tmp_path / "everything.bib"
    big.write_bytes((FIXTURES / "zotero.bib").read_bytes() * 40)
    with served(settings, engine) as url:
        page = browser.new_context().new_page()
        page.goto(f"{url}/manage/{token}")
        page.set_input_files("#library", str(FIXTURES / "zotero.rdf"))
        page.click("#library-form button[type=submit]")
        page.wait_for_selector("#upload-notes")
        notes = page.inner_text("#upload-notes")
        assert "Added 3 example papers from zotero.rdf" in notes
        assert "skipped" in notes
        assert page.input_value("#likes") == "2305.18290, 1706.03762, 1601.00001"
        assert store.get_subscriber(engine, "ada@example.org").likes == [
            "2305.18290",
            "1706.03762",
            "1601.00001",
        ]

        page.set_input_files("#library", str(big))
        page.click("#library-form button[type=submit]")
        page.wait_for_selector("#library-error:not([hidden])")
        assert "The file is too big" in page.inner_text("#library-error")
        assert page.input_value("#likes") == "2305.18290, 1706.03762, 1601.00001"
        page.screenshot(path=str(tmp_path / "manage-upload.png"), full_page=True)
    assert len(store.get_subscriber(engine, "ada@example.org").likes) == 3
