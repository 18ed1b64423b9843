"""A lower-case `and` / `or` / `not` in a keyword profile is a word, not an
operator: sign-up, the confirm page and the manage page say so, as
`digest check-query` does (the profile is kept as typed)."""

from __future__ import annotations

import re

import httpx
from web_served import link_in, mails_to, post_form, served, sign_up

from digest import store, subscriptions
from digest.tokens import make_token

AND_HINT = "&#39;and&#39; is read as a word; write AND"


def slips_on(page: str) -> list[str]:
    found = re.search(r'<ul class="warnings" id="keywords-warnings"[^>]*>(.*?)</ul>', page, re.S)
    return re.findall(r"<li>(.*?)</li>", found.group(1)) if found else []


def test_signup_and_confirm_pages_warn_about_a_lower_case_operator(settings, engine, smtp_sink):
    with served(settings, engine) as url, httpx.Client(base_url=url) as person:
        answer = sign_up(person, "ada@example.org", keywords="diffusion and robots")
        assert answer.status_code == 200, answer.text[:300]
        assert "Check your inbox" in answer.text
        assert any(AND_HINT in w for w in slips_on(answer.text))
        confirm = link_in(mails_to(smtp_sink, "ada@example.org", 1)[0], url, "confirm")
        assert any(AND_HINT in w for w in slips_on(person.get(confirm).text))

        # written as meant: no warning, and the usual redirect
        quiet = sign_up(person, "bob@example.org", keywords="diffusion AND robots")
        assert quiet.status_code == 303
    assert store.get_subscriber(engine, "ada@example.org").keywords == "diffusion and robots"


def test_the_manage_page_warns_about_a_lower_case_operator(settings, engine):
    ada = subscriptions.subscribe(engine, settings, "ada@example.org", "reward")
    manage = "/manage/" + make_token(settings.secret_key, "manage", ["ada@example.org", ada.id])
    with served(settings, engine) as url, httpx.Client(base_url=url) as person:
        assert slips_on(person.get(manage).text) == []
        saved = post_form(person, manage, keywords='reward or "value model" not survey')
        assert saved.status_code == 303
        shown = slips_on(person.get(manage).text)
        assert len(shown) == 2
        assert "write OR" in shown[0] and "write NOT" in shown[1]
        # on a form sent back with an error too, for what was typed
        bad = post_form(person, manage, keywords="reward and robots", max_papers="100000")
        assert bad.status_code == 400
        assert [w for w in slips_on(bad.text) if "write AND" in w]
