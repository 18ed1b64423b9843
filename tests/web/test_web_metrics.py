"""`/metrics`: the admin token as a bearer token, Prometheus text the official parser
reads, figures that move after a real `digest run` through an SMTP server; and the
separate listener (DIGEST_METRICS_LISTEN)."""

from __future__ import annotations

import httpx
import pytest
from conftest import clean_exit, free_port, settings_with, wait_for
from prometheus_client.parser import text_string_to_metric_families
from web_served import served

from digest.web.metrics import serve_metrics

TOKEN = "metrics-test-token"


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    res = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(res.text)
        for s in family.samples
    }


def test_metrics_need_the_admin_token(settings, engine):
    with served(settings_with(settings, admin_token=TOKEN), engine) as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        wrong = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert TOKEN not in wrong.text
        assert scrape(url)[("digest_papers", ())] == 0
    with served(settings, engine) as url:  # no token configured: as if absent
        res = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer x"})
        assert res.status_code == 404


def test_metrics_move_after_a_real_run(cli, settings, engine, smtp_sink):
    for who in ("a@example.org", "b@example.org", "c@example.org"):
        clean_exit(cli("subscribe", who, "-k", "*"), 0)
    clean_exit(cli("pause", "c@example.org"), 0)
    with served(settings_with(settings, admin_token=TOKEN), engine) as url:
        before = scrape(url)
        assert before[("digest_subscribers", (("status", "active"),))] == 2
        assert before[("digest_subscribers", (("status", "paused"),))] == 1
        assert before[("digest_digests_sent_total", ())] == 0
        assert before[("digest_send_latency_seconds_count", ())] == 0
        clean_exit(cli("run", "--now"), 0)
        wait_for(lambda: len(smtp_sink.messages()) == 2)
        after = scrape(url)
    assert after[("digest_digests_sent_total", ())] == 2
    assert after[("digest_digests", (("status", "sent"),))] == 2
    assert after[("digest_send_latency_seconds_count", ())] == 2
    assert after[("digest_send_latency_seconds_bucket", (("le", "+Inf"),))] == 2
    assert after[("digest_outbox_due", ())] == 0
    assert after[("digest_papers", ())] > 0
    assert after[("digest_source_up", (("source", "sample"),))] == 1
    assert 0 <= after[("digest_source_last_fetch_age_seconds", (("source", "sample"),))] < 600


def test_separate_listener(settings, engine):
    port = free_port()
    listen = settings_with(settings, admin_token=TOKEN, metrics_listen=f"127.0.0.1:{port}")
    stop = serve_metrics(listen, engine)
    assert stop is not None
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert ("digest_outbox_due", ()) in scrape(url)
        with served(listen, engine) as site:  # not on the public site then
            res = httpx.get(f"{site}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert res.status_code == 404
    finally:
        stop()


def test_separate_listener_on_a_busy_port_is_one_clear_error(settings, engine):
    import socket

    from digest.errors import InputError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        listen = settings_with(settings, admin_token=TOKEN, metrics_listen=f"127.0.0.1:{port}")
        with pytest.raises(InputError, match=f"DIGEST_METRICS_LISTEN=127.0.0.1:{port}: cannot"):
            serve_metrics(listen, engine)


def test_separate_listener_without_a_token_says_why_it_serves_nothing(settings, engine, caplog):
    listen = settings_with(settings, metrics_listen=f"127.0.0.1:{free_port()}")
    with caplog.at_level("WARNING", logger="digest.web"):
        assert serve_metrics(listen, engine) is None
    assert "DIGEST_ADMIN_TOKEN is empty" in caplog.text


def test_bounces_and_complaints_from_inbound_mail(cli, settings, engine):
    from digest import store
    from digest.states import InboundKind

    clean_exit(cli("subscribe", "a@example.org", "-k", "*"), 0)
    sub = store.get_subscriber(engine, "a@example.org")
    assert sub is not None
    with served(settings_with(settings, admin_token=TOKEN), engine) as url:
        before = scrape(url)
        # what `digest inbound` records for a DSN and for an ARF report
        store.apply_inbound(engine, InboundKind.BOUNCE, sub.id, "5.1.1", max_bounces=3)
        store.apply_inbound(engine, InboundKind.COMPLAINT, sub.id, "abuse", max_bounces=3)
        after = scrape(url)
    kind = "digest_inbound_messages_total"
    assert before[(kind, (("kind", "complaint"),))] == 0
    assert after[(kind, (("kind", "complaint"),))] == 1
    assert after[(kind, (("kind", "bounce"),))] == 1
    assert after[("digest_subscriber_bounces", ())] == 1
    assert after[("digest_subscriber_complaints", ())] == 1
    assert after[("digest_subscribers", (("status", "unsubscribed"),))] == 1
