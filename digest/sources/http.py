"""The one HTTP client every remote source uses, so that all of them are polite alike.

Every request carries a timeout and a User-Agent naming the project and a contact
address; timeouts, connection errors, 5xx and 429 are retried with exponential backoff
(a `Retry-After` header wins over the backoff). A client can also keep a minimum
interval between two requests to the same host, measured from the end of one response
to the start of the next, which is what arXiv's terms ask for ("no more than one
request every three seconds, one connection at a time").

Each `session()` (one per fetch) also has a total deadline,
`DIGEST_FETCH_DEADLINE_SECONDS`: httpx's timeouts are per network operation, so a
server sending a byte every few seconds would otherwise hold a fetch (and every digest
waiting behind it) forever. Bodies are streamed and the deadline, and a stop event set
when the service shuts down, are checked between chunks, between retries and while
waiting for a host's interval.

A feed's server is a third party: a redirect it sends is followed only to http(s),
never to a link-local address (the cloud metadata service), and never from a host
outside the operator's network into it (loopback, private ranges): SSRF. See
`redirect_refusal`.

Failures surface as `SourceError` with one line a user can act on; a caller never sees
an httpx exception.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr, parsedate_to_datetime
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from digest import __version__
from digest.config import Settings
from digest.errors import SourceError

# A response body larger than this is refused: no listing we read comes close.
MAX_BODY_BYTES = 32 * 1024 * 1024
# A server asking us to come back later than this fails the fetch instead of
# blocking a cron job; the next run tries again.
MAX_RETRY_AFTER = 120.0
MAX_BACKOFF = 60.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def user_agent(settings: Settings) -> str:
    """`digest/<version> (+mailto:<contact>)`, as crawlers are asked to identify."""
    _, address = parseaddr(settings.contact_email)
    return f"digest/{__version__} (+mailto:{address or settings.contact_email})"


@dataclass(frozen=True)
class Response:
    """A fully read response; sources parse `content` and never hold a connection.
    `note` says what a `BodyReader` cut from the body ("" when nothing)."""

    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes
    note: str = ""


class BodyReader(Protocol):
    """Takes a response body chunk by chunk, so a source can stop reading early (a feed
    past its entry cap) instead of holding the whole body in memory."""

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; False when nothing more is wanted."""
        ...

    def finish(self) -> tuple[bytes, str]:
        """The body to parse, and a note saying what was cut ("" when nothing)."""
        ...


class CappedReader:
    """The default reader: the whole body, refused past MAX_BODY_BYTES."""

    def __init__(self, shown: str) -> None:
        self._shown = shown
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> bool:
        self._size += len(chunk)
        if self._size > MAX_BODY_BYTES:
            raise SourceError(f"response from {self._shown} is larger than {MAX_BODY_BYTES} bytes")
        self._chunks.append(chunk)
        return True

    def finish(self) -> tuple[bytes, str]:
        return b"".join(self._chunks), ""


class Deadline:
    """When one fetch must be over, and the event that ends it sooner (the service
    shutting down). Both end a fetch with a SourceError, never retried."""

    def __init__(
        self, seconds: float, stop: threading.Event, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.stop = stop
        self._clock = clock
        self._ends = clock() + seconds

    def remaining(self) -> float:
        return self._ends - self._clock()

    def check(self, shown: str) -> None:
        """Raise if the fetch must end now."""
        if self.stop.is_set():
            raise SourceError(f"stopped reading {shown}: the service is shutting down")
        if self.remaining() <= 0:
            raise self.passed(shown)

    def passed(self, shown: str) -> SourceError:
        return SourceError(
            f"gave up on {shown}: the fetch deadline of {self.seconds:g} s passed "
            "(DIGEST_FETCH_DEADLINE_SECONDS)"
        )

    def pause(self, seconds: float, shown: str, sleep: Callable[[float], object] | None) -> None:
        """Wait before a retry, unless the wait would outlast the deadline or the
        service stops meanwhile."""
        if seconds >= self.remaining():
            raise self.passed(shown)
        if sleep is not None:
            sleep(seconds)
        elif self.stop.wait(seconds):
            self.check(shown)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HostThrottle:
    """Keeps at least `min_interval` seconds between the end of one request to a host
    and the start of the next. Shared by every source that talks to the same service."""

    def __init__(
        self,
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._last_end: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold the host for one request: wait out the interval, then record the end."""
        with self._lock:
            last = self._last_end.get(host)
            if last is not None and self.min_interval > 0:
                wait = last + self.min_interval - self._clock()
                if wait > 0:
                    self._sleep(wait)
            try:
                yield
            finally:
                self._last_end[host] = self._clock()


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _addresses(host: str) -> list[IPAddress]:
    """The addresses `host` names: itself when it is one, else what DNS answers (none
    when it does not resolve: the connection then fails with its own error)."""
    try:
        found = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return []
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return [_embedded(a) for a in found]


# NAT64's well-known prefix: 64:ff9b::a9fe:a9fe is 169.254.169.254 wherever a NAT64
# gateway translates (IPv6-only networks with DNS64), and Python calls it global.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, NAT64, 6to4), which is
    where a connection to it ends up; else the address itself."""
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped or address.sixtofour or address


def _host(url: str) -> str:
    """The URL's host as httpx sees it; "" for a URL httpx refuses (it says why)."""
    try:
        return httpx.URL(url).host
    except (httpx.InvalidURL, UnicodeError):
        return ""


def redirect_refusal(origin_host: str, target: httpx.URL) -> str | None:
    """Why a redirect from a feed on `origin_host` to `target` is not followed, or None.

    Only http(s); never a link-local address (169.254.169.254, the metadata service
    of every cloud, and fe80::/10); and an address outside the public internet
    (loopback, private, shared, unspecified) only when the configured host is outside
    it too: the operator named that network, a stranger's feed cannot reach into it.
    The same host is always fine. The addresses are looked up here, before
    connecting; `peer_refusal` checks the address actually connected to, so a DNS
    answer changing in between (rebinding) is caught too."""
    if target.scheme not in ("http", "https"):
        return f"a redirect to a {target.scheme[:20]}: URL"
    host = target.host
    if host == origin_host:
        return None
    return _address_refusal(origin_host, host, _addresses(host))


def peer_refusal(origin_host: str, host: str, peer: str) -> str | None:
    """Why a redirect's connection to `host` that reached address `peer` (the
    socket's peer) is not used, for a feed on `origin_host`, or None: the rules of
    `redirect_refusal` applied to the address DNS gave the connection, the same
    host name included (its answer may have changed since the feed's request)."""
    try:
        address = ipaddress.ip_address(peer.split("%")[0])
    except ValueError:
        return None  # not an IP socket: nothing to judge
    return _address_refusal(origin_host, host, [_embedded(address)])


def _address_refusal(origin_host: str, host: str, addresses: list[IPAddress]) -> str | None:
    origin = _addresses(origin_host)
    if any(a.is_link_local for a in addresses) and not any(a.is_link_local for a in origin):
        return f"a redirect to {host[:100]}, a link-local (cloud metadata) address,"
    if any(not a.is_global for a in addresses) and all(a.is_global for a in origin):
        return f"a redirect from {origin_host[:100]} to {host[:100]}, an internal address,"
    return None


class HttpClient:
    """A polite GET client built from settings. Open one `session()` per fetch."""

    def __init__(
        self,
        settings: Settings,
        min_interval: float = 0.0,
        max_connections: int | None = None,
        sleep: Callable[[float], object] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.timeout = settings.http_timeout
        self.retries = settings.http_retries
        self.backoff = settings.http_backoff
        self.deadline_seconds = settings.fetch_deadline_seconds
        self.user_agent = user_agent(settings)
        self.max_connections = max_connections
        # Set when the service shuts down: every wait and every body chunk checks it.
        self.stop = stop or threading.Event()
        self.throttle = HostThrottle(min_interval, sleep=sleep or self.stop.wait)
        self.sleep = sleep  # None: wait on `stop`, so a shutdown cuts a backoff short

    @contextmanager
    def session(self) -> Iterator[HttpSession]:
        """One fetch: a connection pool and the fetch's deadline, which starts now."""
        limits = (
            httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=1)
            if self.max_connections
            else httpx.Limits()
        )
        with httpx.Client(
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": self.user_agent},
            limits=limits,
            follow_redirects=True,
            max_redirects=5,
        ) as client:
            session = HttpSession(self, client, Deadline(self.deadline_seconds, self.stop))
            client.event_hooks = {"request": [session.check_redirect]}
            yield session


class HttpSession:
    """One open connection pool; `get` retries and throttles, then reads the body."""

    def __init__(self, owner: HttpClient, client: httpx.Client, deadline: Deadline) -> None:
        self._owner = owner
        self._client = client
        self.deadline = deadline
        self._origin = ""  # the host of the URL being fetched (see `check_redirect`)
        self._shown = ""
        self._requests = 0

    def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        reader: Callable[[str], BodyReader] = CappedReader,
    ) -> Response:
        """GET `url`; a 2xx or 304 is returned, anything else raises SourceError.
        `reader(shown_url)` makes what takes a 2xx body (one per attempt)."""
        owner = self._owner
        host = urlsplit(url).netloc
        attempts = owner.retries + 1
        problem = ""
        for attempt in range(attempts):
            outcome, wait = self._attempt(url, host, params, headers, reader)
            if isinstance(outcome, Response):
                return outcome
            problem = outcome
            if attempt + 1 < attempts:
                delay = wait if wait is not None else self._backoff(attempt)
                self.deadline.pause(delay, _shown(url), owner.sleep)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        raise SourceError(f"{problem}{tries}")

    def _attempt(
        self,
        url: str,
        host: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        reader: Callable[[str], BodyReader],
    ) -> tuple[Response | str, float | None]:
        """One request: the response, or (problem, seconds the server asked us to wait)."""
        shown = _shown(url)
        self._origin, self._shown = _host(url), shown
        self._requests = 0  # requests httpx sends for this attempt: the URL, then redirects
        deadline = self.deadline
        capped = False  # this attempt's timeout is what was left of the deadline
        encoding = "none"
        try:
            with self._owner.throttle.slot(host):
                deadline.check(shown)
                # No single wait may outlast the deadline either.
                left = deadline.remaining()
                capped = left < self._owner.timeout
                timeout = httpx.Timeout(max(0.01, min(self._owner.timeout, left)))
                with self._client.stream(
                    "GET", url, params=params, headers=headers, timeout=timeout
                ) as resp:
                    status = resp.status_code
                    encoding = resp.headers.get("content-encoding", "none")[:40]
                    # Read even an error body: it keeps the connection for the next try.
                    ok = 200 <= status < 300
                    body, note = _read(
                        resp, reader(shown) if ok else CappedReader(shown), deadline, shown
                    )
                    if status in RETRY_STATUSES:
                        wait = retry_after_seconds(resp.headers.get("Retry-After"))
                        if wait is not None and wait > MAX_RETRY_AFTER:
                            raise SourceError(
                                f"HTTP {status} from {shown}: the server asks to retry "
                                f"after {wait:.0f} s; giving up for this run"
                            )
                        return f"HTTP {status} from {shown}", wait
                    if not (ok or status == 304):
                        raise SourceError(f"HTTP {status} from {shown}")
                    return Response(str(resp.url), status, dict(resp.headers), body, note), None
        except httpx.TimeoutException:
            deadline.check(shown)
            if capped:
                raise deadline.passed(shown) from None
            return f"timed out after {self._owner.timeout:g} s waiting for {shown}", None
        except httpx.TooManyRedirects:
            raise SourceError(f"too many redirects from {shown}") from None
        except httpx.TransportError as exc:
            return f"cannot reach {shown}: {type(exc).__name__}", None
        except httpx.DecodingError:
            # A body its Content-Encoding does not describe (a broken proxy or cache):
            # perhaps better on the next try, and never an httpx exception for a caller.
            return f"cannot decode the body from {shown} (Content-Encoding: {encoding})", None
        except httpx.InvalidURL as exc:
            raise SourceError(f"bad URL {shown}: {exc}") from None
        except UnicodeError:
            # The IDNA codec refusing a host name (a label over 63 characters), in the
            # URL or in a redirect's Location: httpx lets it through as is.
            raise SourceError(
                f"cannot reach {shown}: it or a redirect names an invalid host name"
            ) from None

    def check_redirect(self, request: httpx.Request) -> None:
        """httpx's request hook, run before every request it sends, redirects too:
        a redirect `redirect_refusal` refuses fails the fetch before connecting, and
        the connection it opens is checked once connected (`_check_peer`)."""
        why = redirect_refusal(self._origin, request.url)
        if why is not None:
            raise SourceError(f"{why} refused (fetching {self._shown})")
        self._requests += 1
        if self._requests > 1:  # the operator's own URL is fetched as named
            request.extensions["trace"] = partial(self._check_peer, request.url, [])

    def _check_peer(
        self, url: httpx.URL, connecting: list[str], event: str, info: dict[str, Any]
    ) -> None:
        """httpcore's trace callback for a redirect: when its new connection to
        `url`'s host is open, the peer address must pass `peer_refusal` before the
        request is written. A connection to another host (an HTTP proxy the
        operator set) is not judged."""
        if event == "connection.connect_tcp.started":
            connecting[:] = [str(info.get("host", ""))]
        elif event == "connection.connect_tcp.complete" and connecting == [
            url.raw_host.decode("ascii")
        ]:
            stream = info["return_value"]
            peer = stream.get_extra_info("server_addr")
            why = peer_refusal(self._origin, url.host, str(peer[0])) if peer else None
            if why is not None:
                stream.close()
                raise SourceError(f"{why} refused (fetching {self._shown}; connected to {peer[0]})")

    def _backoff(self, attempt: int) -> float:
        base = self._owner.backoff * (2**attempt)
        return min(MAX_BACKOFF, base + random.uniform(0, self._owner.backoff / 2))


def _read(
    resp: httpx.Response, reader: BodyReader, deadline: Deadline, shown: str
) -> tuple[bytes, str]:
    """Stream the body into `reader`, checking the deadline and the stop event between
    chunks: a trickling server cannot hold the fetch past its deadline."""
    for chunk in resp.iter_bytes():
        deadline.check(shown)
        if not reader.feed(chunk):
            break
    return reader.finish()


def _shown(url: str) -> str:
    """The URL as shown in messages: no query string (it may be long), capped."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:300]


class SourceClients:
    """The clients one fetch run shares: arXiv's throttled one (every `arxiv:` source
    goes through it, so two category sets still respect one interval) and a plain one."""

    def __init__(self, settings: Settings, stop: threading.Event | None = None) -> None:
        self.web = HttpClient(settings, stop=stop)
        self.arxiv = HttpClient(
            settings, min_interval=settings.arxiv_min_interval, max_connections=1, stop=stop
        )
