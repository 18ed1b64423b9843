"""Issue 16 item 2: after "delete everything", the old links stay dead, whatever
happens to the address later (a new sign-up of it is another subscription)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import time_machine
from conftest import TEST_SECRET
from web_served import link_in, mails_to, post_form, served, sign_up

from digest import store
from digest.models import utcnow
from digest.tokens import make_token

ADA = "ada@example.org"


def test_old_links_are_refused_after_delete_and_a_new_sign_up(settings, engine, smtp_sink):
    with served(settings, engine, signup_limit_per_ip=1000) as base:
        client = httpx.Client(base_url=base)
        # First life: sign up, confirm, get the manage link by signing up again.
        assert sign_up(client, ADA).status_code == 303
        old_confirm = link_in(mails_to(smtp_sink, ADA, 1)[0], base, "confirm")
        assert "Confirm my subscription" in client.get(old_confirm).text
        assert post_form(client, old_confirm).status_code == 200
        assert store.get_subscriber(engine, ADA).status == "active"
        sign_up(client, ADA)
        old_manage = link_in(mails_to(smtp_sink, ADA, 2)[1], base, "manage")
        old_id = store.get_subscriber(engine, ADA).id
        old_unsubscribe = "/unsubscribe/" + make_token(TEST_SECRET, "unsubscribe", [ADA, old_id])
        # A link of the old kind (the address alone), mailed while the row lived.
        store.update_subscriber(engine, ADA, created_at=utcnow() - timedelta(minutes=10))
        with time_machine.travel(utcnow() - timedelta(minutes=5)):
            legacy_manage = "/manage/" + make_token(TEST_SECRET, "manage", ADA)
        assert client.get(legacy_manage).status_code == 200  # still the same subscription

        deleted = post_form(client, old_manage + "/delete", confirm_delete="yes")
        assert "Everything is deleted" in deleted.text
        # Second life: a new sign-up of the same address, not confirmed yet.
        assert sign_up(client, ADA, keywords="robotics").status_code == 303
        new_confirm = link_in(mails_to(smtp_sink, ADA, 3)[2], base, "confirm")
        assert store.get_subscriber(engine, ADA).id != old_id

        for path in (old_manage, legacy_manage):
            page = client.get(path)
            assert page.status_code == 410 and "Nothing here any more" in page.text
            resumed = post_form(client, path + "/resume")
            assert resumed.status_code == 410 and "Nothing here any more" in resumed.text
            assert client.post(f"/api{path}/resume").status_code == 410
        confirm_page = client.get(old_confirm)
        assert confirm_page.status_code == 410 and "Nothing here any more" in confirm_page.text
        assert client.post(f"/api{old_confirm}").status_code == 410
        client.post(old_unsubscribe)
        sub = store.get_subscriber(engine, ADA)
        assert (sub.status, sub.keywords) == ("pending", "robotics")  # nothing changed

        # The new links work.
        assert "robotics" in client.get(new_confirm).text
        assert post_form(client, new_confirm).status_code == 200
        assert store.get_subscriber(engine, ADA).status == "active"
        sign_up(client, ADA)
        new_manage = link_in(mails_to(smtp_sink, ADA, 4)[3], base, "manage")
        assert client.get(new_manage).status_code == 200
        assert client.get(f"/api{new_manage}").json()["keywords"] == "robotics"
