"""`digest subscribers`, `digest papers` and `digest fetch` in a narrow terminal: Rich
cut their cells ("ada@exam…", "upda…") below the tables' width. They now fall back
to one paragraph per row, as `digest status` does, with every value whole. Real
`digest` processes, a real SQLite file; hostile values (a long address, a long
title with an unbroken word, CRLF, HTML, markup) stored as they would arrive."""

from __future__ import annotations

import json
from datetime import date

from conftest import clean_exit
from sqlmodel import Session

from digest import store
from digest.models import Paper

LONG_EMAIL = "ada.lovelace.analytical-engine@mathematics.example-university.org"
HOSTILE_TITLE = (
    "<script>alert(1)</script> :smile: Attention\r\nIs [bold]All[/bold] You Need, "
    + "again " * 30
    + "Supercalifragilistic" * 4
)
COLUMNS = 50


def squashed(text: str) -> str:
    """Text without whitespace: a wrapped paragraph breaks lines at spaces and folds
    a word too long for a line, so a value is whole when its characters follow each
    other in the output with only line breaks between them."""
    return "".join(text.split())


def shown(value: object) -> str:
    """How the CLI prints a stored value: control characters as escapes (`\\r`)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


def _hostile_store(cli, env) -> None:
    clean_exit(
        cli(
            "subscribe",
            LONG_EMAIL,
            "-k",
            '"<b>graph</b> networks" OR diffusion',
            "--interest",
            "papers about <em>diffusion</em> models for [red]protein[/red] design :smile:",
        ),
        0,
    )
    engine = store.make_engine(env["DIGEST_DATABASE_URL"])
    with Session(engine) as session:  # as an older version or a feed might have left it
        session.add(Paper(id="2611.00001", title=HOSTILE_TITLE, published=date(2026, 11, 20)))
        session.commit()
    engine.dispose()


def _narrow(cli, *args: str) -> str:
    res = cli(*args, extra_env={"COLUMNS": str(COLUMNS)})
    clean_exit(res, 0)
    assert "…" not in res.stdout, res.stdout
    assert all(len(line) <= COLUMNS for line in res.stdout.splitlines()), res.stdout
    return res.stdout


def test_narrow_listings_keep_every_value_whole(cli, env):
    _hostile_store(cli, env)
    fetched = _narrow(cli, "fetch")
    for word in ("sample:", "new=", "updated=", "already_known=", "errors=0", "status=ok"):
        assert word in fetched, fetched

    listing = squashed(_narrow(cli, "subscribers"))
    (sub,) = json.loads(cli("subscribers", "--json").stdout)
    for key in ("email", "status", "keywords", "interest", "max_papers", "created_at"):
        assert squashed(shown(sub[key])) in listing, (key, listing)

    papers = _narrow(cli, "papers")
    assert "<script>alert(1)</script>" in papers and "\\r\\n" in papers  # shown, not run
    everything = squashed(papers)
    stored = json.loads(cli("papers", "--json").stdout)
    assert len(stored) > 10 and any(p["title"] == HOSTILE_TITLE for p in stored)
    for p in stored:
        assert squashed(f"{p['id']}:") in everything, p["id"]
        assert squashed(f"title={shown(p['title'])}") in everything, p["title"]


def test_wide_terminals_keep_the_tables_and_json_ignores_the_width(cli, env):
    _hostile_store(cli, env)
    for args in (["subscribers"], ["papers"]):
        wide = cli(*args, extra_env={"COLUMNS": "400"})
        clean_exit(wide, 0)
        assert "┃" in wide.stdout and "…" not in wide.stdout, wide.stdout
        assert ":smile:" in wide.stdout and "😄" not in wide.stdout  # as written
        narrow_json = cli(*args, "--json", extra_env={"COLUMNS": str(COLUMNS)}).stdout
        assert narrow_json == cli(*args, "--json", extra_env={"COLUMNS": "400"}).stdout


def test_nothing_to_list_is_said_in_a_narrow_terminal(cli):
    # seven headers do not fit 50 columns whole: said in words instead
    assert _narrow(cli, "subscribers") == "subscribers: none yet\n"


def test_markup_split_across_two_values_stays_text_in_a_narrow_terminal(cli, env):
    """Each value is escaped, but a paragraph joins them: `x [/` at the end of the
    keywords and `]` starting the interest made the tag `[/" interest=]` (a
    traceback, exit 1), `[red` and `]` coloured the rest and swallowed `interest=`.
    A web sign-up sets both fields; a feed sets a paper's id and title."""
    for address, keywords, interest in (
        ("eve@example.org", 'diffusion "x [/"', "] robots"),
        ("mallory@example.org", 'diffusion "x [red"', "] robots"),
        ("trent@example.org", 'diffusion "x [link=https://evil.example/"', "] robots :smile:"),
    ):
        clean_exit(cli("subscribe", address, "-k", keywords, "--interest", interest), 0)
    engine = store.make_engine(env["DIGEST_DATABASE_URL"])
    with Session(engine) as session:
        title = "] Attention " + "Supercalifragilistic" * 4  # no table fits 50 columns
        session.add(Paper(id="2611.00002 [/", title=title, published=date(2026, 11, 20)))
        session.commit()
    engine.dispose()
    listing = _narrow(cli, "subscribers")
    for sub in json.loads(cli("subscribers", "--json").stdout):
        for key in ("keywords", "interest"):
            assert squashed(f"{key}={sub[key]}") in squashed(listing), (key, listing)
    assert "\x1b" not in listing  # no colour, no hyperlink
    paper = f"2611.00002 [/: published=2026-11-20 title={title}"
    assert squashed(paper) in squashed(_narrow(cli, "papers"))
