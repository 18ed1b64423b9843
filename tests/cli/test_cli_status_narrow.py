"""`digest status` in a narrow terminal: before, below ~90 columns the delivery table
cut its headers to "pe…", "se…", "se…" (pending, sending, sent: indistinguishable)
and the last fetch time to "2026-11-29T23…". Real `digest` processes, a real SQLite
file, a real SMTP server."""

from __future__ import annotations

import json

from digest.states import DigestStatus


def _edition(cli) -> None:
    assert cli("fetch").code == 0
    assert cli("subscribe", "ada@example.org", "-k", "model OR learning").code == 0
    assert cli("run", "--now", "--no-fetch").code == 0


def test_a_narrow_terminal_gets_every_word_whole(cli):
    _edition(cli)
    wide = cli("status", extra_env={"COLUMNS": "200"})
    assert wide.code == 0 and "┃ pending ┃" in wide.stdout  # wide enough: the tables
    for columns in (60, 40):
        got = cli("status", extra_env={"COLUMNS": str(columns)})
        assert got.code == 0, got.stderr
        assert "…" not in got.stdout, got.stdout
        assert all(len(line) <= columns for line in got.stdout.splitlines()), got.stdout
        words = got.stdout.split()
        for status in DigestStatus:  # each count named in full, with its value
            assert any(w.startswith(f"{status.value}=") for w in words), (status, got.stdout)
        assert "sent=1" in words
        data = json.loads(cli("status", "--json").stdout)
        fetched = data["sources"][0]["last_fetch_at"]
        assert f"last_fetch={fetched}" in got.stdout.replace("\n", "")


def test_json_is_the_same_whatever_the_width(cli):
    _edition(cli)
    narrow = json.loads(cli("status", "--json", extra_env={"COLUMNS": "40"}).stdout)
    wide = json.loads(cli("status", "--json", extra_env={"COLUMNS": "200"}).stdout)
    assert narrow["editions"] == wide["editions"] and narrow["editions"][0]["sent"] == 1


def test_no_editions_yet_is_said_in_a_narrow_terminal(cli):
    got = cli("status", extra_env={"COLUMNS": "50"})
    assert got.code == 0 and "editions: none yet" in got.stdout, got.stdout
