"""A feed's server (a third party) answering with a redirect to a host the operator
never named: to the cloud metadata address, to a `file:` URL, or from a public host
into the operator's own network (SSRF). Such a redirect is refused before any
connection is made, with one line naming it, and the source fails without retries;
a redirect to the same host, or between hosts of the network the operator named,
still works."""

from __future__ import annotations

import socket
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
        ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "link-local"),  # NAT64
        ("http://[2002:a9fe:a9fe::1]/latest/meta-data/", "link-local"),  # 6to4
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
        ("93.184.215.14", "http://[64:ff9b::a00:5]/admin", "internal"),  # 10.0.0.5 by NAT64
        ("93.184.215.14", "http://[64:ff9b::5db8:d70e]/feed", None),  # 93.184.215.14
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


def _rebinding(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """A resolver that answers the guard's look-up of `names` (no port) with a public
    address and the connection's (with a port) with loopback: an attacker's DNS with
    a zero TTL. Only these names; every other one resolves as usual."""
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host in names:
            return real("93.184.215.14" if port is None else "127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)


def test_a_redirect_to_a_name_that_rebinds_to_an_internal_address_is_refused(
    replay: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """DNS rebinding: the guard looks a redirect's host up before connecting, the
    connection looks it up again. A name answering the guard with a public address
    and the connection with loopback got the feed's redirect into the operator's
    machine; the address actually connected to is now checked before the request
    is written."""
    _rebinding(monkeypatch, "feed.example", "rebind.example")
    port = replay.url.rsplit(":", 1)[1]
    replay.route("/feed.xml", Reply(302, b"", {"Location": f"http://rebind.example:{port}/in"}))
    replay.route("/in", xml("feed_rss2.xml"))
    settings = make_settings(replay, tmp_path)
    source = FeedSource(f"http://feed.example:{port}/feed.xml", HttpClient(settings), settings)
    with pytest.raises(SourceError, match=r"feed.example to rebind.example.*internal.*refused"):
        source.fetch({})
    assert len(replay.hits("/feed.xml")) == 1  # the feed itself: the URL the operator named
    assert replay.hits("/in") == []  # connected, but not a byte of the request written


def test_a_redirect_to_another_port_of_the_feeds_own_rebinding_name_is_refused(
    replay: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The same host name is no safer: the feed's server redirects to its own name on
    another port (a new connection), its DNS now answering loopback, and would reach
    any local service (Redis on 6379) with a path of its choosing. The operator
    named the feed's URL, which is fetched as named; a redirect is judged."""
    _rebinding(monkeypatch, "feed.example")
    with ReplayServer() as internal:
        internal.route("/admin", xml("feed_rss2.xml"))
        other = internal.url.rsplit(":", 1)[1]
        port = replay.url.rsplit(":", 1)[1]
        location = f"http://feed.example:{other}/admin"
        replay.route("/feed.xml", Reply(302, b"", {"Location": location}))
        replay.route("/same-port", Reply(302, b"", {"Location": "/ok.xml"}))
        replay.route("/ok.xml", xml("feed_rss2.xml"))
        settings = make_settings(replay, tmp_path)

        def fetch_named(path: str):
            url = f"http://feed.example:{port}{path}"
            return FeedSource(url, HttpClient(settings), settings).fetch({})

        with pytest.raises(SourceError, match=r"internal address.*refused.*127\.0\.0\.1"):
            fetch_named("/feed.xml")
        assert internal.hits("/admin") == []
        # a redirect within the connection the feed's URL opened is that URL's server
        assert fetch_named("/same-port").records
