"""Rate limits against subscription bombing: sign-ups per client IP, and mails per
mailbox (`+tag` variants of one address share one budget). Counts live in the database (table `rateevent`), so they hold across
restarts and across several web workers; any object with the same two methods can
stand in (`create_app(..., limiter=...)`).

Buckets are keyed hashes: the table never holds an address or an IP in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from digest import store
from digest.config import Settings
from digest.models import utcnow
from digest.store import Engine

IP_WINDOW = timedelta(hours=1)
ADDRESS_WINDOW = timedelta(days=1)
KEEP = timedelta(days=2)


class RateLimiter(Protocol):
    def allow(self, bucket: str, limit: int, window: timedelta) -> bool:
        """Count one event in `bucket` unless `limit` were already counted in `window`."""
        ...

    def forget(self, buckets: Sequence[str]) -> None: ...


class DbRateLimiter:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def allow(self, bucket: str, limit: int, window: timedelta) -> bool:
        now = self.clock()
        store.delete_rate_events(self.engine, before=now - max(KEEP, window))
        return store.take_rate_slot(self.engine, bucket, limit, now - window)

    def forget(self, buckets: Sequence[str]) -> None:
        store.delete_rate_events(self.engine, buckets)


def network_of(client_ip: str) -> str:
    """What one client controls: an IPv4 address, or the /64 an IPv6 host is given
    (one subscriber line holds 2**64 addresses, each would get its own limit)."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(getattr(address, "ipv4_mapped", None) or address)


# Providers where dots in the local part do not matter (a.b@gmail.com is ab@gmail.com).
DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def mailbox_of(address: str) -> str:
    """The mailbox an address delivers to, as an abuse desk counts: `+tag` folded away
    (ada+x@d and ada+y@d both reach ada@d), and dots too where the provider ignores
    them. Only for counting: mail still goes to the address as given."""
    local, _, domain = address.lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "") or local
    return f"{local}@{domain}"


@dataclass
class SignupLimits:
    """The two limits the sign-up flow applies, over one limiter."""

    settings: Settings
    limiter: RateLimiter

    def _bucket(self, kind: str, value: str) -> str:
        key = self.settings.secret_key.encode()
        digest = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:40]}"

    def address_bucket(self, address: str) -> str:
        """One budget per mailbox, however the address is spelt."""
        return self._bucket("mail", mailbox_of(address))

    def allow_signup(self, client_ip: str) -> bool:
        return self.limiter.allow(
            self._bucket("ip", network_of(client_ip)), self.settings.signup_limit_per_ip, IP_WINDOW
        )

    def allow_mail(self, address: str) -> bool:
        return self.limiter.allow(
            self.address_bucket(address), self.settings.mail_limit_per_address, ADDRESS_WINDOW
        )

    def forget_address(self, address: str) -> None:
        self.limiter.forget([self.address_bucket(address)])


class MemoryRateLimiter:
    """A `RateLimiter` in process memory, for limits checked on every keystroke (the
    live preview): a database write per check would cost more than the work it
    guards, and these counts need not survive a restart. Sliding window per bucket;
    buckets idle for a whole window are dropped, so memory follows the active clients.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._swept = clock()

    def allow(self, bucket: str, limit: int, window: timedelta) -> bool:
        now, span = self.clock(), window.total_seconds()
        with self._lock:
            self._sweep(now, span)
            events = self._events.setdefault(bucket, deque())
            while events and events[0] <= now - span:
                events.popleft()
            if len(events) >= limit:
                return False
            events.append(now)
            return True

    def retry_after(self, bucket: str, window: timedelta) -> int:
        """Whole seconds until `bucket` has room again (for a Retry-After header)."""
        with self._lock:
            events = self._events.get(bucket)
            if not events:
                return 1
            return max(1, math.ceil(events[0] + window.total_seconds() - self.clock()))

    def forget(self, buckets: Sequence[str]) -> None:
        with self._lock:
            for bucket in buckets:
                self._events.pop(bucket, None)

    def _sweep(self, now: float, span: float) -> None:
        if now - self._swept < span:
            return
        self._swept = now
        for bucket in [b for b, ev in self._events.items() if not ev or ev[-1] <= now - span]:
            del self._events[bucket]
