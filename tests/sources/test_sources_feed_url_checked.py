"""A `feed:` URL that is no URL (an unclosed IPv6 bracket, a port that is not a
number or is out of range) passed the start-up check and failed every fetch with
"ValueError: Invalid IPv6 URL"; like any other bad source, it now stops the command
at start with one line naming DIGEST_SOURCES (exit 2)."""

from __future__ import annotations

import pytest
from conftest import clean_exit


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://[::1/feed", "http://x:abc/feed", "http://x:99999/feed"]
)
def test_a_feed_url_that_does_not_parse_stops_at_start(cli, env, url):
    res = cli("fetch", extra_env={"DIGEST_SOURCES": f"feed:{url}"})
    clean_exit(res, 2)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "DIGEST_SOURCES" in lines[0], res.stderr


def test_an_ipv6_feed_url_with_a_port_is_fine(cli, env):
    # no retries: the refused connection is the answer (with them, 8 s of backoff)
    urls = {"DIGEST_SOURCES": "feed:http://[::1]:9/f.xml", "DIGEST_HTTP_RETRIES": "0"}
    res = cli("fetch", extra_env=urls)
    assert res.code == 1  # nothing listens on port 9: a fetch failure, not bad input
    assert "DIGEST_SOURCES" not in res.stderr
