"""Delivery: the outbox and the transports that carry its messages."""

from __future__ import annotations

from pathlib import Path

from digest.config import Settings
from digest.delivery.base import SendResult, Transport
from digest.delivery.file import FileTransport
from digest.delivery.sendmail import SendmailTransport
from digest.delivery.smtp import SmtpTransport

__all__ = ["SendResult", "Transport", "make_transport"]


def make_transport(settings: Settings) -> Transport:
    """The transport DIGEST_TRANSPORT names: smtp (default), file or sendmail."""
    if settings.transport == "file":
        return FileTransport(settings.outbox_dir or Path("outbox"))
    if settings.transport == "sendmail":
        return SendmailTransport(settings.sendmail_path, settings.smtp_timeout)
    return SmtpTransport(settings)
