"""Issue 16 item 7: the confirm page shows what is being confirmed (keywords, topics,
schedule), and a later sign-up for a pending address, maybe a stranger's, cannot
replace its profile silently: the earlier link says it was replaced, the later one's
page says the profile replaced an earlier one."""

from __future__ import annotations

import html

import httpx
from web_served import link_in, mails_to, post_form, served, sign_up

from digest import store

ADA = "ada@example.org"


def test_confirm_page_shows_the_profile_and_a_replacement(settings, engine, smtp_sink):
    with served(settings, engine, signup_limit_per_ip=1000) as base:
        owner = httpx.Client(base_url=base)
        assert (
            sign_up(
                owner,
                ADA,
                keywords='"reinforcement learning"',
                topics="diffusion-models",
                frequency="weekly",
                weekday="fri",
                send_at="06:45",
            ).status_code
            == 303
        )
        first = link_in(mails_to(smtp_sink, ADA, 1)[0], base, "confirm")
        page = html.unescape(owner.get(first).text)
        assert '"reinforcement learning"' in page
        assert "Diffusion" in page  # the topic's label
        assert "Once a week (fri) at 06:45, Europe/Berlin" in page
        assert "at most 10" in page
        assert "replaced an earlier one" not in page

        stranger = httpx.Client(base_url=base)
        assert sign_up(stranger, ADA, keywords="cryptocurrency").status_code == 303
        second = link_in(mails_to(smtp_sink, ADA, 2)[1], base, "confirm")

        used = owner.get(first)
        assert used.status_code == 400 and "replaced by a newer one" in used.text
        page = html.unescape(owner.get(second).text)
        assert "cryptocurrency" in page and "replaced an earlier one" in page
        assert "reinforcement" not in page
        assert store.get_subscriber(engine, ADA).status == "pending"  # not confirmed by itself

        assert post_form(owner, second).status_code == 200
        assert store.get_subscriber(engine, ADA).keywords == "cryptocurrency"
