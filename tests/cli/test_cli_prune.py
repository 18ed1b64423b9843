"""`digest prune` as an operator runs it: --dry-run counts, --json reports, the
settings decide what is kept, bad input is one line and exit 2."""

from __future__ import annotations

from datetime import timedelta

from conftest import clean_exit, strict_json
from sqlalchemy import text

from digest import pipeline, store, subscriptions
from digest.models import utcnow


def old_sent_digests(engine, settings, days: int) -> int:
    """Two real digests sent to the sink, then made `days` old; their email bytes."""
    for address in ("ada@example.org", "bob@example.org"):
        subscriptions.subscribe(engine, settings, address, "diffusion")
    pipeline.run_once(engine, settings, everyone=True)
    rows = store.digests_for_edition(engine)
    assert [r.status for r in rows] == ["sent", "sent"]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE digest SET created_at = :at, sent_at = :at"),
            {"at": utcnow() - timedelta(days=days)},
        )
    return sum(len(r.message) for r in rows)


def test_prune_json_dry_run_then_for_real(cli, engine, settings, smtp_sink):
    size = old_sent_digests(engine, settings, days=8)
    dry = cli("prune", "--dry-run", "--json")
    clean_exit(dry, 0)
    data = strict_json(dry.stdout)
    assert data["dry_run"] is True
    assert (data["messages"], data["message_bytes"], data["events"]) == (2, size, 0)
    assert data["messages_before"] and data["events_before"] is None
    assert all(r.message for r in store.digests_for_edition(engine))

    done = cli("prune", "--json", "--batch", "1")
    clean_exit(done, 0)
    data = strict_json(done.stdout)
    assert (data["dry_run"], data["messages"], data["message_bytes"]) == (False, 2, size)
    assert data["batches"] == 2
    rows = store.digests_for_edition(engine)
    assert len(rows) == 2 and all(r.message is None and r.status == "sent" for r in rows)

    again = cli("prune")
    clean_exit(again, 0)
    assert again.stdout.splitlines() == [
        "deleted 0 stored emails of finished digests (0 B; older than 7 days)",
        "deleted 0 inbound events (none: kept forever)",
    ]


def test_prune_follows_the_settings(cli, engine, settings, smtp_sink):
    size = old_sent_digests(engine, settings, days=8)
    kept = cli("prune", extra_env={"DIGEST_KEEP_MESSAGES_DAYS": "10"})
    clean_exit(kept, 0)
    assert "deleted 0 stored emails" in kept.stdout
    forever = cli("prune", "--json", extra_env={"DIGEST_KEEP_MESSAGES_DAYS": "0"})
    clean_exit(forever, 0)
    assert strict_json(forever.stdout)["messages_before"] is None
    done = cli("prune", extra_env={"DIGEST_KEEP_EVENTS_DAYS": "30"})
    clean_exit(done, 0)
    assert done.stdout.splitlines()[0].startswith("deleted 2 stored emails of finished digests (")
    assert "older than 30 days" in done.stdout.splitlines()[1]
    assert size > 1000


def test_prune_bad_input_is_one_line_and_exit_2(cli):
    for args, env, says in (
        (["prune", "--batch", "0"], {}, "--batch"),
        (["prune"], {"DIGEST_KEEP_MESSAGES_DAYS": "a week"}, "DIGEST_KEEP_MESSAGES_DAYS"),
        (["prune"], {"DIGEST_KEEP_EVENTS_DAYS": "-1"}, "DIGEST_KEEP_EVENTS_DAYS"),
    ):
        res = cli(*args, extra_env=env)
        clean_exit(res, 2)
        assert says in res.stderr
