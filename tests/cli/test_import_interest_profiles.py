"""`digest export` then `digest import` keeps subscribers whose profile is a
plain-English interest or example papers, not keywords: such a row was refused with
"the profile is empty", so a round trip lost them."""

from __future__ import annotations

import json

import pytest
from conftest import clean_exit, digest_init, strict_json

from digest import store, subscriptions
from digest.config import load_settings


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_interest_and_example_profiles_survive_export_and_import(cli, env, tmp_path, fmt):
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    subscriptions.subscribe(
        engine, settings, "bob@example.org", None, interest="diffusion models for video"
    )
    subscriptions.subscribe(engine, settings, "cy@example.org", "", likes="2305.18290")
    subscriptions.subscribe(engine, settings, "dee@example.org", "robot*", interest="grasping")
    engine.dispose()
    before = strict_json(cli("subscribers", "--json").stdout)
    path = tmp_path / f"subs.{fmt}"
    clean_exit(cli("export", str(path)), 0)
    other = {**env, "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    digest_init(other)
    res = cli("import", str(path), "--json", extra_env=other)
    clean_exit(res, 0)
    assert json.loads(res.stdout)["imported"] == 3
    after = strict_json(cli("subscribers", "--json", extra_env=other).stdout)
    assert after == before
    assert [s["interest"] for s in after] == ["diffusion models for video", None, "grasping"]
    assert after[1]["likes"] == ["2305.18290"]


def test_import_checks_an_interest_and_example_ids(cli, env, tmp_path):
    path = tmp_path / "bad.jsonl"
    rows = [
        {"email": "a@example.org", "keywords": "", "likes": ["not an id"]},
        {"email": "b@example.org", "keywords": "", "interest": "x" * 50_000},
        {"email": "c@example.org", "keywords": "", "likes": "2305.18290"},
        {"email": "d@example.org", "keywords": "", "interest": None, "likes": []},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = cli("import", str(path), "--json")
    clean_exit(res, 1)
    report = json.loads(res.stdout)
    errors = {e["line"]: e["error"] for e in report["errors"]}
    assert "not an arXiv id" in errors[1]
    assert "at most" in errors[2]
    assert "likes" in errors[3]  # a list, not a string
    assert "profile is empty" in errors[4]
    assert report["imported"] == 0
