"""The mail transports `DIGEST_TRANSPORT` may name, each one entry of a registry.

A transport is one module implementing `digest.delivery.base.Transport` plus one
entry here: its name and a factory from the settings. The start-up check of
`DIGEST_TRANSPORT` (`digest.startup`) and `make_transport` both read the registry,
so the list of allowed names lives in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from digest.config import Settings
from digest.delivery.base import Transport
from digest.errors import ConfigError

TransportFactory = Callable[[Settings], Transport]


class TransportRegistry:
    """Transport names to factories, in the order error messages list them."""

    def __init__(self, factories: dict[str, TransportFactory] | None = None) -> None:
        self._factories: dict[str, TransportFactory] = {}
        for name, factory in (factories or {}).items():
            self.register(name, factory)

    def register(self, name: str, factory: TransportFactory) -> None:
        if name in self._factories:
            raise ValueError(f"transport {name!r} is already registered")
        if name != name.strip().lower() or not name:
            raise ValueError(f"a transport name is lower case, got {name!r}")
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        del self._factories[name]

    @contextmanager
    def registered(self, name: str, factory: TransportFactory) -> Iterator[None]:
        """`name` known for the duration of the block (tests, plugins tried out)."""
        self.register(name, factory)
        try:
            yield
        finally:
            self.unregister(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    def check_name(self, value: str) -> str:
        """The `DIGEST_TRANSPORT` converter: the name, normalised, if registered."""
        name = value.strip().lower()
        if name not in self._factories:
            raise ValueError(f"expected one of {', '.join(self._factories)}, got {value!r}")
        return name

    def make(self, settings: Settings) -> Transport:
        """The transport `settings.transport` names."""
        factory = self._factories.get(settings.transport)
        if factory is None:
            raise ConfigError(
                f"DIGEST_TRANSPORT: expected one of {', '.join(self._factories)}, "
                f"got {settings.transport!r}"
            )
        return factory(settings)


# Each transport's module is imported when a transport is made: checking
# DIGEST_TRANSPORT at start-up needs only the names, and aiosmtplib, asyncio and ssl
# would cost every command (`digest --help`, `digest subscribe`) ~50 ms.
def _smtp(settings: Settings) -> Transport:
    from digest.delivery import smtp

    return smtp.from_settings(settings)


def _file(settings: Settings) -> Transport:
    from digest.delivery import file

    return file.from_settings(settings)


def _sendmail(settings: Settings) -> Transport:
    from digest.delivery import sendmail

    return sendmail.from_settings(settings)


def default_transports() -> TransportRegistry:
    """The transports this release ships; smtp is the default."""
    return TransportRegistry({"smtp": _smtp, "file": _file, "sendmail": _sendmail})


# The registry the service reads; `make_transport` and `digest.startup` take a
# `transports` argument as well, so a caller (a test) may pass its own instead.
TRANSPORTS = default_transports()
