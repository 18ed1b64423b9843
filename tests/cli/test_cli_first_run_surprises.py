"""What a new user found on a first run (issue 16, "Surprises"): a missing database,
misspelt settings, the silent default source, --version, `set` with nothing to set
and time zone typos. Each through the real `digest` command."""

from __future__ import annotations

import re

from conftest import run_cli


def test_a_command_on_a_missing_database_says_so_and_creates_nothing(env, tmp_path):
    elsewhere = tmp_path / "cron-cwd"
    elsewhere.mkdir()
    missing = elsewhere / "digest.db"
    no_db = {**env, "DIGEST_DATABASE_URL": f"sqlite:///{missing}"}
    for args in (["subscribers"], ["run"], ["status"], ["papers", "--json"]):
        res = run_cli(args, no_db, cwd=elsewhere)
        assert res.code == 2, (args, res.stderr)
        assert f"no database at {missing}; run `digest init` first" in res.stderr
        assert "DIGEST_DATABASE_URL" in res.stderr and "Traceback" not in res.stderr
        assert not missing.exists()
    # The default URL is relative: a cron job without `cd` lands here.
    bare = {k: v for k, v in env.items() if k != "DIGEST_DATABASE_URL"}
    res = run_cli(["run"], bare, cwd=elsewhere)
    assert res.code == 2 and "no database at" in res.stderr and not missing.exists()
    assert run_cli(["init"], no_db, cwd=elsewhere).code == 0  # init makes it
    assert missing.exists()
    assert run_cli(["subscribers", "--json"], no_db, cwd=elsewhere).code == 0


def test_web_and_serve_refuse_a_missing_database(env, tmp_path):
    missing = tmp_path / "nowhere.db"
    no_db = {**env, "DIGEST_DATABASE_URL": f"sqlite:///{missing}"}
    for command in ("web", "serve"):
        res = run_cli([command, "--port", "1"], no_db, cwd=tmp_path, timeout=60)
        assert res.code == 2, res.stderr
        assert "no database at" in res.stderr and not missing.exists()


def test_a_misspelt_setting_gets_a_did_you_mean_once(cli, tmp_path):
    (tmp_path / ".env").write_text("DIGEST_SMTP_PROT=2525\nOTHER_THING=1\n", encoding="utf-8")
    res = cli("subscribers", extra_env={"DIGEST_SMPT_HOST": "mail.example.org", "HOME_X": "1"})
    assert res.code == 0, res.stderr
    lines = res.stderr.splitlines()
    assert (
        lines.count(
            "warning: DIGEST_SMPT_HOST is not a digest setting; did you mean DIGEST_SMTP_HOST?"
        )
        == 1
    )
    assert "did you mean DIGEST_SMTP_PORT?" in res.stderr  # from .env
    assert "OTHER_THING" not in res.stderr and "HOME_X" not in res.stderr
    (tmp_path / ".env").unlink()
    clean = cli("subscribers")
    assert "warning" not in clean.stderr


def test_the_default_sample_source_is_named_when_used(cli, env, tmp_path):
    unset = {k: v for k, v in env.items() if k != "DIGEST_SOURCES"}
    res = run_cli(["run"], unset, cwd=tmp_path)
    assert res.code == 0, res.stderr
    warning = "warning: DIGEST_SOURCES is not set: using the bundled sample papers"
    assert res.stderr.count(warning) == 1
    assert warning not in cli("run").stderr  # set explicitly (to sample): no warning


def test_fetch_says_where_it_fetched_from_when_no_source_is_set(cli, env, tmp_path):
    """Before, `digest fetch` with DIGEST_SOURCES unset printed a table naming
    "sample" and nothing on why, or on how to fetch real papers."""
    unset = {k: v for k, v in env.items() if k != "DIGEST_SOURCES"}
    for args in (["fetch"], ["fetch", "--json"]):
        res = run_cli(args, unset, cwd=tmp_path)
        assert res.code == 0, res.stderr
        lines = [line for line in res.stderr.splitlines() if "DIGEST_SOURCES" in line]
        assert len(lines) == 1, res.stderr
        assert "bundled sample papers" in lines[0] and "arxiv:cs.CL" in lines[0]
    assert "DIGEST_SOURCES" not in cli("fetch").stderr  # set explicitly: no warning
    res = run_cli(["fetch"], {**unset, "DIGEST_SOURCES": " "}, cwd=tmp_path)
    assert res.code == 2 and "DIGEST_SOURCES: expected at least one source" in res.stderr


def test_version(cli):
    res = cli("--version")
    assert res.code == 0
    assert re.fullmatch(r"digest \d+\.\d+\.\d+\S*\n", res.stdout), res.stdout


def test_set_with_no_options_changes_nothing_and_says_so(cli):
    assert cli("subscribe", "ada@example.org", "-k", "diffusion").code == 0
    res = cli("set", "ada@example.org")
    assert res.code == 2
    assert "nothing to change; give at least one option" in res.stderr
    assert "updated" not in res.stdout


def test_a_time_zone_typo_gets_a_did_you_mean(cli):
    res = cli("subscribe", "ada@example.org", "-k", "diffusion", "--timezone", "Europe/Berln")
    assert res.code == 2
    assert "did you mean Europe/Berlin?" in res.stderr
    assert res.stderr.count("\n") == 1
    lower = cli("subscribe", "ada@example.org", "-k", "x", "--timezone", "america/new_york")
    assert "did you mean America/New_York?" in lower.stderr
    alias = cli("subscribe", "ada@example.org", "-k", "diffusion", "--timezone", "Africa/Asmera")
    assert alias.code == 0, alias.stderr  # an old alias typed in is still accepted
