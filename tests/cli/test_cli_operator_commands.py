"""Operator commands through the real `digest` command: pause, resume, reactivate,
delete, and honest answers from subscribe / set on a stopped address."""

from __future__ import annotations

import json

from conftest import clean_exit, strict_json

from digest import store
from digest.config import load_settings


def statuses(cli) -> dict[str, dict]:
    res = cli("subscribers", "--json")
    clean_exit(res, 0)
    return {s["email"]: s for s in strict_json(res.stdout)}


def test_pause_resume_several_addresses_and_json(cli):
    for who in ("a@example.org", "b@example.org"):
        clean_exit(cli("subscribe", who, "-k", "diffusion"), 0)
    res = cli("pause", "a@example.org", "B@Example.org", "--json")
    clean_exit(res, 0)
    assert [o["changed"] for o in json.loads(res.stdout)] == [True, True]
    assert {s["status"] for s in statuses(cli).values()} == {"paused"}
    again = cli("pause", "a@example.org")
    clean_exit(again, 0)
    assert "already paused" in again.stdout
    clean_exit(cli("resume", "a@example.org"), 0)
    assert statuses(cli)["a@example.org"]["status"] == "active"
    assert statuses(cli)["b@example.org"]["status"] == "paused"


def test_refusals_name_the_reason_and_go_on(cli):
    clean_exit(cli("subscribe", "a@example.org", "-k", "diffusion"), 0)
    clean_exit(cli("unsubscribe", "a@example.org"), 0)
    res = cli("resume", "a@example.org", "nobody@example.org", "not-an-address")
    clean_exit(res, 2)
    assert "reactivate a@example.org --unsubscribed-ok" in res.stderr
    assert "error: no subscriber with address nobody@example.org" in res.stderr
    assert "invalid email address" in res.stderr
    assert statuses(cli)["a@example.org"]["status"] == "unsubscribed"


def test_reactivate_unsubscribed_only_with_the_flag(cli):
    clean_exit(cli("subscribe", "a@example.org", "-k", "diffusion"), 0)
    clean_exit(cli("unsubscribe", "a@example.org"), 0)
    refused = cli("reactivate", "a@example.org", "--json")
    clean_exit(refused, 2)
    [outcome] = json.loads(refused.stdout)
    assert outcome["refused"] and "--unsubscribed-ok" in outcome["message"]
    assert statuses(cli)["a@example.org"]["status"] == "unsubscribed"
    clean_exit(cli("reactivate", "a@example.org", "--unsubscribed-ok"), 0)
    assert statuses(cli)["a@example.org"]["status"] == "active"


def test_reactivate_suspended_clears_bounces(cli, env):
    clean_exit(cli("subscribe", "a@example.org", "-k", "diffusion"), 0)
    engine = store.make_engine(load_settings(environ=env, env_file=None).database_url)
    store.update_subscriber(engine, "a@example.org", status="suspended", bounces=3)
    assert statuses(cli)["a@example.org"]["bounces"] == 3
    res = cli("reactivate", "a@example.org")
    clean_exit(res, 0)
    assert "was suspended" in res.stdout
    row = statuses(cli)["a@example.org"]
    assert (row["status"], row["bounces"]) == ("active", 0)


def test_subscribe_and_set_are_honest_about_a_stopped_address(cli):
    clean_exit(cli("subscribe", "a@example.org", "-k", "diffusion"), 0)
    clean_exit(cli("unsubscribe", "a@example.org"), 0)
    again = cli("subscribe", "a@example.org", "-k", "robots")
    clean_exit(again, 2)
    assert "status unsubscribed" in again.stderr and "digest reactivate" in again.stderr
    changed = cli("set", "a@example.org", "-k", "robots")
    clean_exit(changed, 0)
    assert "no digests are sent" in changed.stderr and "reactivate" in changed.stderr


def test_delete_needs_yes_and_removes_the_row_and_digests(cli):
    clean_exit(cli("subscribe", "a@example.org", "-k", "diffusion"), 0)
    clean_exit(cli("subscribe", "b@example.org", "-k", "diffusion"), 0)
    clean_exit(cli("run", "--now"), 0)
    refused = cli("delete", "a@example.org")
    clean_exit(refused, 2)
    assert "--yes" in refused.stderr
    assert "a@example.org" in statuses(cli)
    clean_exit(cli("delete", "a@example.org", "--yes"), 0)
    assert list(statuses(cli)) == ["b@example.org"]
    status = json.loads(cli("status", "--json").stdout)
    assert sum(e["total"] for e in status["editions"]) == 1  # a's digest went with a


def test_deleting_an_unknown_address_says_so_as_set_does(cli):
    """Before, `digest delete nobody@...` asked for --yes, and with it answered
    "refused: nobody@example.org: no such subscriber"; `digest set` says
    "error: no subscriber with address ...". Both exit 2 (bad input), one line."""
    same = "error: no subscriber with address nobody@example.org\n"
    assert cli("set", "nobody@example.org", "--max-papers", "3").stderr == same
    for args in (["nobody@example.org"], ["Nobody@Example.org", "--yes"]):
        res = cli("delete", *args)
        clean_exit(res, 2)
        assert res.stderr == same and res.stdout == "", res.stderr
    clean_exit(cli("subscribe", "a@example.org", "-k", "diffusion"), 0)
    asked = cli("delete", "a@example.org")  # a known address: --yes is asked for
    clean_exit(asked, 2)
    assert "run again with --yes" in asked.stderr
    both = cli("delete", "a@example.org", "nobody@example.org", "--yes")
    clean_exit(both, 2)  # the known one deleted, the unknown one said
    assert both.stdout == "a@example.org: deleted with its digests\n"
    assert both.stderr == same
    assert statuses(cli) == {}


def test_one_address_named_twice_is_acted_on_once(cli):
    """`digest delete C@X c@x --yes` deleted the subscriber, then said "no subscriber
    with address c@x" for the same address and exited 2."""
    clean_exit(cli("subscribe", "c@example.org", "-k", "diffusion"), 0)
    res = cli("delete", "C@Example.org", "c@example.org", "--yes")
    clean_exit(res, 0)
    assert res.stdout == "c@example.org: deleted with its digests\n" and res.stderr == ""
    assert statuses(cli) == {}
