"""A stranger's `digest subscribers > list.txt` or `| grep`: Rich drew tables 80
columns wide off a terminal and cut the addresses ("ada@exam…"), and `digest status`
cut the edition to "2026-…" in an 80-column terminal. What names a row is never cut."""

from __future__ import annotations

from conftest import clean_exit, run_cli

LONG = "ada.lovelace.analytical-engine@mathematics.example-university.org"


def test_a_piped_listing_keeps_every_address_whole(cli, env, tmp_path):
    clean_exit(cli("subscribe", LONG, "-k", '"reinforcement learning" OR diffusion'), 0)
    piped = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    res = run_cli(["subscribers"], piped, cwd=tmp_path)
    clean_exit(res, 0)
    assert LONG in res.stdout
    assert "…" not in res.stdout


def test_a_narrow_terminal_keeps_the_edition_and_the_address_whole(cli, smtp_sink):
    clean_exit(cli("subscribe", LONG, "-k", "*"), 0)
    clean_exit(cli("run", "--now"), 0)
    status = cli("status", extra_env={"COLUMNS": "80"})
    clean_exit(status, 0)
    edition = cli("status", "--json").stdout.split('"edition": "', 1)[1][:10]
    assert edition in status.stdout
    listing = cli("subscribers", extra_env={"COLUMNS": "80"})
    clean_exit(listing, 0)
    # too wide for a table in 80 columns: one paragraph per row, led by the address
    assert listing.stdout.startswith(f"{LONG}: status=active")
    assert "…" not in listing.stdout
