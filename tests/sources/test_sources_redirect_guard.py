"""A feed's server (a third party) answering with a redirect to a host the operator
never named: to the cloud metadata address, to a `file:` URL, or from a public host
into the operator's own network (SSRF). Such a redirect is refused before any
connection is made, with one line naming it, and the source fails without retries;
a redirect to the same host, or between hosts of the network the operator named,
still works."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from replay_server import ReplayServer, Reply, xml
from test_sources import make_settings

from digest.errors import SourceError
from digest.sources.feed import FeedSource
from digest.sources.http import HttpClient, redirect_refusal


def fetch(replay: ReplayServer, tmp_path: Path, path: str):
    settings = make_settings(replay, tmp_path)
    return FeedSource(replay.url + path, HttpClient(settings), settings).fetch({})


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/x", "link-local"),
        ("file:///etc/passwd", "file"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "gopher"),
    ],
)
def test_a_redirect_to_metadata_or_another_scheme_is_refused_at_once(
    replay: ReplayServer, tmp_path: Path, location: str, why: str
):
    replay.route("/feed.xml", Reply(302, b"", {"Location": location}))
    started = time.monotonic()
    with pytest.raises(SourceError, match=rf"redirect.*{why}.*refused") as caught:
        fetch(replay, tmp_path, "/feed.xml")
    assert "/feed.xml" in str(caught.value)
    assert len(replay.hits("/feed.xml")) == 1  # no retry: it would only be refused again
    assert time.monotonic() - started < 5  # no connection attempt to the address


def test_a_redirect_within_the_named_network_still_works(replay: ReplayServer, tmp_path):
    replay.route("/old.xml", Reply(301, b"", {"Location": "/feed.xml"}))
    replay.route("/feed.xml", xml("feed_rss2.xml"))
    batch = fetch(replay, tmp_path, "/old.xml")
    assert batch.records
    # another loopback name for the same machine: the operator named a loopback feed
    other = replay.url.replace("127.0.0.1", "localhost") + "/feed.xml"
    replay.route("/elsewhere.xml", Reply(302, b"", {"Location": other}))
    assert fetch(replay, tmp_path, "/elsewhere.xml").records


@pytest.mark.parametrize(
    ("origin", "target", "refused"),
    [
        ("93.184.215.14", "http://127.0.0.1:6379/", "internal"),
        ("93.184.215.14", "http://10.0.0.5/admin", "internal"),
        ("93.184.215.14", "http://[::1]/", "internal"),
        ("93.184.215.14", "http://100.64.0.1/", "internal"),
        ("93.184.215.14", "http://0.0.0.0:8000/", "internal"),
        ("93.184.215.14", "http://1.1.1.1/feed", None),
        ("10.0.0.4", "http://10.0.0.5/feed", None),
        ("127.0.0.1", "http://169.254.169.254/", "link-local"),
        ("93.184.215.14", "http://93.184.215.14/other", None),
    ],
)
def test_which_redirects_are_refused(origin: str, target: str, refused: str | None):
    why = redirect_refusal(origin, httpx.URL(target))
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why
