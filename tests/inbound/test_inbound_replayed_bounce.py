"""The same bounce mailed again (a replayed DSN, a mail server delivering it twice, or
a forged one built on the bounce address a forwarded digest shows) counted a bounce
each time, so three copies in a minute suspended an address that had bounced one
digest. Digests go out at most daily, and a delivery-time refusal counts once per
digest: an inbound bounce counts once per BOUNCE_WINDOW per subscriber; every copy is
still recorded, saying it was not counted."""

from __future__ import annotations

import json
from datetime import timedelta

from inbound_people import FIXTURES, add_people, run_inbound, with_tokens
from sqlalchemy import update
from sqlmodel import Session

from digest import store
from digest.config import load_settings
from digest.inbound import handle
from digest.models import InboundEvent, utcnow
from digest.store.inbound import BOUNCE_WINDOW

DSN = "dsn/postfix_failed_5.1.1.eml"


def test_a_bounce_mailed_three_times_counts_once_and_suspends_nobody(env):
    settings = load_settings(environ=env, env_file=None)
    engine = store.make_engine(settings.database_url)
    people = add_people(engine, settings)
    data = with_tokens((FIXTURES / DSN).read_bytes(), settings.secret_key, people["ada"])
    runs = [run_inbound(env, data) for _ in range(3)]  # the real command, stdin
    assert [r.returncode for r in runs] == [0, 0, 0], runs[0].stderr[-500:]
    results = [json.loads(r.stdout) for r in runs]
    assert [r["action"] for r in results] == ["bounce"] * 3
    assert [r["bounces"] for r in results] == [1, 1, 1]
    assert "not counted" in results[1]["reason"]
    assert [r["changed"] for r in results] == [True, False, False]
    ada = store.get_subscriber(engine, "ada@example.org")
    assert (ada.bounces, ada.status) == (1, "active")
    events = store.list_inbound_events(engine, 10)
    assert [e.kind for e in events] == ["bounce"] * 3
    assert sum("not counted" in e.detail for e in events) == 2
    engine.dispose()


def test_a_bounce_after_the_window_counts_again(engine, settings):
    people = add_people(engine, settings)
    data = with_tokens((FIXTURES / DSN).read_bytes(), settings.secret_key, people["ada"])
    assert handle(engine, settings, data).bounces == 1
    earlier = utcnow() - BOUNCE_WINDOW - timedelta(minutes=1)
    with Session(engine) as session:
        session.exec(update(InboundEvent).values(created_at=earlier))
        session.commit()
    assert handle(engine, settings, data).bounces == 2
