"""Delivery: the outbox and the transports that carry its messages."""

from __future__ import annotations

from digest.config import Settings
from digest.delivery.base import SendResult, Transport
from digest.delivery.transports import TRANSPORTS, TransportRegistry

__all__ = ["SendResult", "Transport", "make_transport"]


def make_transport(settings: Settings, transports: TransportRegistry = TRANSPORTS) -> Transport:
    """The transport DIGEST_TRANSPORT names: smtp (default), file, sendmail or any
    other registered in `digest.delivery.transports`."""
    return transports.make(settings)
