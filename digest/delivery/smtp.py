"""SMTP transport through aiosmtplib: one connection, reused for the whole run."""

from __future__ import annotations

import contextlib

import aiosmtplib

from digest.config import Settings
from digest.delivery.base import SendResult


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: aiosmtplib.SMTP | None = None

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout,
            use_tls=s.smtp_security == "ssl",
            start_tls=s.smtp_security == "starttls",
            username=s.smtp_username or None,
            password=s.smtp_password or None,
        )

    async def open(self) -> None:
        if self._client is None or not self._client.is_connected:
            self._client = self._new_client()
            await self._client.connect()

    async def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        try:
            await self.open()
            assert self._client is not None
            errors, reply = await self._client.sendmail(sender, [recipient], message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            err = exc.recipients[0] if exc.recipients else None
            code = err.code if err else 550
            return SendResult(False, f"{code} {err.message if err else exc}", code >= 500)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            return SendResult(False, f"{exc.code} {exc.message}", exc.code >= 500)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._reset()
            return SendResult(False, f"connection: {exc}", False)
        if errors:
            code, text = next(iter(errors.values()))
            return SendResult(False, f"{code} {text}", code >= 500)
        return SendResult(True, reply)

    async def _reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # Closing a broken connection may fail in any way; it is gone either way.
            with contextlib.suppress(Exception):
                client.close()

    async def close(self) -> None:
        if self._client is not None and self._client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException):
                await self._client.quit()
        await self._reset()
