"""`digest ratings ADDRESS`: lists a subscriber's ratings (--json too) and clears them."""

from __future__ import annotations

from conftest import clean_exit, strict_json

from digest import store
from digest.records import PaperRecord


def test_ratings_listed_and_cleared(cli, engine):
    clean_exit(cli("subscribe", "ada@example.org", "--keywords", "diffusion"), 0)
    store.merge_papers(engine, [PaperRecord(id="2401.00001", title="Liked paper", source="t")])
    ada = store.get_subscriber(engine, "ada@example.org")
    store.record_rating(engine, ada.id, "2401.00001", 1)
    store.record_rating(engine, ada.id, "2401.00002", -1)

    listed = cli("ratings", "ADA@example.org", "--json")
    clean_exit(listed, 0)
    rows = strict_json(listed.stdout)
    assert {(r["paper_id"], r["vote"], r["title"]) for r in rows} == {
        ("2401.00001", "more", "Liked paper"),
        ("2401.00002", "less", None),
    }
    text = cli("ratings", "ada@example.org")
    assert "Liked paper" in text.stdout and "(not stored)" in text.stdout

    clean_exit(cli("ratings", "ada@example.org", "--paper", "2401.00002"), 2)
    clean_exit(cli("ratings", "ada@example.org", "--clear", "--paper", "2401.00002"), 0)
    assert store.ratings_for(engine, [ada.id]) == {ada.id: {"2401.00001": 1}}
    cleared = cli("ratings", "ada@example.org", "--clear")
    clean_exit(cleared, 0)
    assert "cleared 1 rating of ada@example.org" in cleared.stdout
    assert strict_json(cli("ratings", "ada@example.org", "--json").stdout) == []
    unknown = cli("ratings", "nobody@example.org")
    clean_exit(unknown, 2)
    assert "no subscriber" in unknown.stderr
