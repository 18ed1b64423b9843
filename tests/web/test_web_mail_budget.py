"""Issue 16 item 6: the mail budget is per mailbox (`+tag` variants, and dots at
Gmail, count as one), and a sign-up over it is told so instead of being swallowed."""

from __future__ import annotations

import httpx
from conftest import wait_for
from web_served import mails_to, served, sign_up

from digest import store
from digest.models import Subscriber, utcnow
from digest.web.limits import mailbox_of

SPENT = "We sent you a message recently"


def test_tag_variants_share_one_budget_and_the_owner_is_told(settings, engine, smtp_sink):
    with served(settings, engine, signup_limit_per_ip=1000, mail_limit_per_address=3) as base:
        stranger = httpx.Client(base_url=base)
        for tag in ("x", "y", "z"):
            assert sign_up(stranger, f"ada+{tag}@example.org").status_code == 303
        wait_for(lambda: len(smtp_sink.messages()) == 3)
        assert sign_up(stranger, "Ada+w@example.org").status_code == 429

        owner = httpx.Client(base_url=base)
        page = sign_up(owner, "ada@example.org", keywords="robotics")
        assert page.status_code == 429
        assert SPENT in page.text and "spam folder" in page.text and "3 messages a day" in page.text
        api = owner.post("/api/subscriptions", json={"email": "ada@example.org", "keywords": "x"})
        assert api.status_code == 429 and api.json()["field"] == "email"
        assert "inbox" in api.json()["error"]
        assert store.get_subscriber(engine, "ada@example.org") is None
        assert len(smtp_sink.messages()) == 3  # nothing more went to the mailbox

        # Another mailbox has its own budget.
        assert sign_up(owner, "bo@example.org").status_code == 303
        mails_to(smtp_sink, "bo@example.org", 1)


def test_a_spent_budget_says_the_same_for_known_and_new_addresses(settings, engine, smtp_sink):
    now = utcnow()
    store.add_subscriber(
        engine,
        Subscriber(email="known@example.org", keywords="x", created_at=now, confirmed_at=now),
    )
    with served(settings, engine, signup_limit_per_ip=1000, mail_limit_per_address=1) as base:
        client = httpx.Client(base_url=base)
        answers = {}
        for address in ("known@example.org", "new@example.org"):
            assert sign_up(client, address).status_code == 303
            spent = sign_up(client, address)
            answers[address] = (spent.status_code, spent.text.replace(address, "ADDRESS"))
        assert answers["known@example.org"][0] == 429
        known, new = answers.values()
        assert known[0] == new[0]
        assert SPENT in known[1] and SPENT in new[1]


def test_mailbox_folding():
    assert mailbox_of("Ada+News@Example.org") == "ada@example.org"
    assert mailbox_of("a.d.a+x@gmail.com") == "ada@gmail.com"
    assert mailbox_of("a.da@example.org") == "a.da@example.org"  # dots only where ignored
    assert mailbox_of("+x@example.org") == "+x@example.org"
