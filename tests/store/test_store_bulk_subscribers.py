"""store.add_subscribers: many subscribers in one transaction, all or nothing."""

from __future__ import annotations

import pytest

from digest import store
from digest.errors import InputError
from digest.states import SubscriberStatus


def test_bulk_insert_fills_defaults_and_keeps_given_fields(engine) -> None:
    rows = [
        {"email": f"reader{i}@example.org", "keywords": f"term{i}", "max_papers": 5 + i % 3}
        for i in range(12_000)
    ]
    rows[7]["timezone"] = "Europe/Berlin"

    assert store.add_subscribers(engine, iter(rows), chunk=5000) == 12_000

    subs = store.list_subscribers(engine)
    assert len(subs) == 12_000
    seventh = store.get_subscriber(engine, "reader7@example.org")
    assert seventh is not None
    assert (seventh.keywords, seventh.max_papers, seventh.timezone) == ("term7", 6, "Europe/Berlin")
    assert seventh.status == SubscriberStatus.ACTIVE and seventh.send_at == "07:00"
    assert len({s.id for s in subs}) == 12_000


def test_a_known_address_writes_nothing(engine) -> None:
    store.add_subscribers(engine, [{"email": "ada@example.org", "keywords": "x"}])
    batch = [{"email": f"new{i}@example.org", "keywords": "y"} for i in range(6000)]
    batch.append({"email": "ada@example.org", "keywords": "z"})

    with pytest.raises(InputError, match="already subscribed"):
        store.add_subscribers(engine, batch, chunk=5000)

    assert [s.email for s in store.list_subscribers(engine)] == ["ada@example.org"]
