"""Retention (`store.prune`): the stored emails of old finished digests are deleted in
batches, never those of digests that may still be sent, and never the digest rows;
inbound events are pruned only when asked (SQLite file and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from digest import store, subscriptions
from digest.models import Digest, DigestMessage, InboundEvent, utcnow
from digest.states import DigestStatus as S

DAY = timedelta(days=1)


def add_digests(engine, sub_id: int, rows: list[dict]) -> dict[str, int]:
    """Digest rows with a message each, one edition per row; returns id by edition."""
    with Session(engine) as session:
        made = []
        for n, fields in enumerate(rows):
            edition = fields.pop("edition", f"2026-01-{n + 1:02d}")
            row = Digest(
                subscriber_id=sub_id,
                edition=edition,
                recipient="ada@example.org",
                paper_ids=["p-1"],
                message=b"x" * (1000 + n),
                **fields,
            )
            session.add(row)
            made.append(row)
        session.commit()
        return {row.edition: row.id for row in made}


def with_message(engine) -> set[int]:
    with Session(engine) as session:
        return set(session.exec(select(DigestMessage.digest_id)).all())


def digest_ids(engine) -> set[int]:
    with Session(engine) as session:
        return set(session.exec(select(Digest.id)).all())


def exercise(engine, settings) -> None:
    now = utcnow()
    old, recent = now - 10 * DAY, now - 2 * DAY
    sub = subscriptions.subscribe(engine, settings, "ada@example.org", "diffusion")
    ids = add_digests(
        engine,
        sub.id,
        [
            dict(edition="sent", status=S.SENT, created_at=old, sent_at=old),
            dict(edition="bounced", status=S.BOUNCED, created_at=old),
            dict(edition="failed", status=S.FAILED, created_at=old),
            dict(edition="empty", status=S.EMPTY, created_at=old),
            # May still go out, however old: kept.
            dict(edition="pending", status=S.PENDING, created_at=old),
            dict(edition="retrying", status=S.RETRYING, created_at=old, next_attempt_at=old),
            dict(edition="sending", status=S.SENDING, created_at=old, lease_until=old),
            dict(edition="building", status=S.BUILDING, created_at=old),
            # Finished, but touched within the last 7 days: kept.
            dict(edition="recent", status=S.SENT, created_at=recent, sent_at=recent),
            dict(edition="sent-late", status=S.SENT, created_at=old, sent_at=recent),
            dict(edition="pushed", status=S.FAILED, created_at=old, retry_from=recent),
        ],
    )
    gone = {ids[e] for e in ("sent", "bounced", "failed", "empty")}
    everything = digest_ids(engine)
    sizes = {i: 1000 + n for n, i in enumerate(ids.values())}

    dry = store.prune(engine, 7, 0, dry_run=True, now=now)
    assert (dry.messages, dry.message_bytes, dry.events) == (4, sum(sizes[i] for i in gone), 0)
    assert with_message(engine) == everything  # a dry run deletes nothing

    report = store.prune(engine, 7, 0, now=now)
    assert report.messages == 4 and report.message_bytes == dry.message_bytes
    assert report.events_before is None and report.messages_before == now - 7 * DAY
    assert with_message(engine) == everything - gone
    assert digest_ids(engine) == everything  # the rows themselves stay
    pruned = store.digest_for(engine, sub.id, "sent")
    assert pruned.message is None and pruned.paper_ids == ["p-1"] and pruned.status == S.SENT
    # `digest retry` does not push back a failed digest whose email is gone.
    assert store.retry_failed(engine) == 1  # only "pushed" (it kept its email)
    assert store.digest_for(engine, sub.id, "failed").status == S.FAILED

    again = store.prune(engine, 7, 0, now=now)
    assert (again.messages, again.message_bytes) == (0, 0)
    # 0 days: keep forever, even a year on.
    assert store.prune(engine, 0, 0, now=now + 365 * DAY).messages == 0
    assert with_message(engine) == everything - gone


def exercise_batches(engine, settings) -> None:
    now = utcnow()
    old = now - 30 * DAY
    sub = subscriptions.subscribe(engine, settings, "ada@example.org", "diffusion")
    rows = []
    for n in range(40):  # finished and due rows interleaved
        status = S.PENDING if n % 3 == 0 else S.SENT
        rows.append(dict(edition=f"e-{n:03d}", status=status, created_at=old, sent_at=old))
    ids = add_digests(engine, sub.id, rows)
    due = {ids[f"e-{n:03d}"] for n in range(40) if n % 3 == 0}
    report = store.prune(engine, 7, 0, batch=4, now=now)
    assert report.messages == 40 - len(due) == 26
    assert report.batches == 10  # 40 digest ids, 4 a transaction
    assert with_message(engine) == due
    # The next prune walks only the stored messages: none is old and finished.
    assert store.prune(engine, 7, 0, batch=4, now=now).messages == 0
    # Digests newer than the cutoff end the walk: nothing of them is read or deleted.
    fresh = add_digests(
        engine, sub.id, [dict(edition=f"new-{n}", status=S.SENT, sent_at=now) for n in range(8)]
    )
    later = store.prune(engine, 7, 0, batch=4, now=now)
    assert later.messages == 0 and with_message(engine) == due | set(fresh.values())


def exercise_events(engine, settings) -> None:
    now = utcnow()
    with Session(engine) as session:
        for n in range(25):
            session.add(InboundEvent(kind="ignored", created_at=now - (100 + n) * DAY))
        session.add(InboundEvent(kind="bounce", created_at=now - DAY))
        session.commit()
    assert store.prune(engine, 7, 0, now=now).events == 0  # 0: kept forever
    assert store.prune(engine, 7, 90, dry_run=True, now=now).events == 25
    report = store.prune(engine, 7, 90, batch=1, now=now)  # events: 10 a batch
    assert report.events == 25 and report.batches == 3
    assert {k: n for k, n in store.inbound_counts(engine).items() if n} == {"bounce": 1}


def exercise_event_counters(engine, settings) -> None:
    """`digest_inbound_messages` is a Prometheus counter: pruning the events it was
    counted from must not make it go backwards (the pruned rows are tallied)."""
    now = utcnow()

    def inbound() -> dict[str, int]:
        return store.metrics_snapshot(engine, now, (1.0,), "2000-01-01").inbound

    with Session(engine) as session:
        for n in range(12):
            kind = ("ignored", "bounce", "complaint")[n % 3]
            session.add(InboundEvent(kind=kind, created_at=now - (100 + n) * DAY))
        session.add(InboundEvent(kind="bounce", created_at=now - DAY))
        session.commit()
    before = inbound()
    assert before == {"ignored": 4, "bounce": 5, "complaint": 4}
    assert store.prune(engine, 7, 90, batch=1, now=now).events == 12  # 10 a batch
    assert inbound() == before
    # later events add to the tally; a second prune adds to it too
    with Session(engine) as session:
        session.add(InboundEvent(kind="bounce", created_at=now - 200 * DAY))
        session.add(InboundEvent(kind="unsubscribe", created_at=now))
        session.commit()
    assert store.prune(engine, 7, 90, now=now).events == 1
    assert inbound() == {**before, "bounce": 6, "unsubscribe": 1}
    # the stored trail itself is what is left
    assert {k: n for k, n in store.inbound_counts(engine).items() if n} == {
        "bounce": 1,
        "unsubscribe": 1,
    }


def exercise_sent_counter(engine, settings) -> None:
    """`digest_digests_sent` is a Prometheus counter: deleting a subscriber (and so
    their outbox rows) must not make it go backwards (their rows are tallied)."""
    now = utcnow()

    def snapshot():
        return store.metrics_snapshot(engine, now, (1.0,), "2000-01-01")

    ada = subscriptions.subscribe(engine, settings, "ada@example.org", "diffusion")
    bob = subscriptions.subscribe(engine, settings, "bob@example.org", "diffusion")
    sent = dict(status=S.SENT, created_at=now, sent_at=now)
    add_digests(engine, ada.id, [sent, dict(sent), dict(status=S.FAILED)])
    add_digests(engine, bob.id, [dict(sent)])
    assert snapshot().digests_sent == 3
    assert store.delete_subscriber(engine, "ada@example.org")
    after = snapshot()
    assert after.digests_sent == 3  # was 1: only bob's row was left to count
    assert after.digests == {"sent": 1}  # the gauge counts the rows stored
    add_digests(engine, bob.id, [dict(sent, edition="later")])
    assert store.delete_subscriber(engine, "bob@example.org")  # added to the tally
    assert snapshot().digests_sent == 4 and snapshot().digests == {}


SCENARIOS = [
    exercise,
    exercise_batches,
    exercise_events,
    exercise_event_counters,
    exercise_sent_counter,
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_prune_on_a_sqlite_file(engine, settings, scenario):
    scenario(engine, settings)


@pytest.mark.postgres
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_prune_on_postgresql(postgres_url, settings, scenario):
    engine = store.make_engine(postgres_url)
    store.init_db(engine)
    try:
        scenario(engine, settings)
    finally:
        engine.dispose()


def test_deleting_a_subscriber_keeps_the_inbound_counter(engine, settings):
    """Their inbound events go with them, but the counter keeps what was read."""
    now = utcnow()
    ada = subscriptions.subscribe(engine, settings, "ada@example.org", "diffusion")
    with Session(engine) as session:
        session.add(InboundEvent(kind="bounce", subscriber_id=ada.id, created_at=now))
        session.add(InboundEvent(kind="complaint", subscriber_id=ada.id, created_at=now))
        session.add(InboundEvent(kind="ignored", created_at=now))
        session.commit()
    snapshot = lambda: store.metrics_snapshot(engine, now, (1.0,), "2000-01-01").inbound  # noqa: E731
    before = snapshot()
    assert store.delete_subscriber(engine, "ada@example.org")
    assert store.inbound_counts(engine).get("bounce", 0) == 0  # the rows are gone
    assert snapshot() == before == {"bounce": 1, "complaint": 1, "ignored": 1}
