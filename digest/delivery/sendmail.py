"""Sendmail transport: hand each message to the local MTA's `sendmail` program.

For people who already run Postfix, Exim or msmtp: the MTA queues and retries on its
own, so what we see is only whether it took the message. The exit status follows
sysexits.h: 75 (EX_TEMPFAIL) and other unexpected failures are retried; 67 (no such
user) and 68 (no such host) are the recipient's fault and count as a bounce.

A digest's text part is 8bit; the program cannot say whether the relays after it
take 8bit (msmtp forwards it as it is, whatever its server offers), so it gets the
message re-encoded 7bit (`downgrade.seven_bit_message`), which every relay takes.
Starting the program costs far more than the re-encoding.
"""

from __future__ import annotations

import asyncio
from email.utils import parseaddr

from digest.config import Settings
from digest.delivery.base import SendResult
from digest.delivery.downgrade import seven_bit_message

_PERMANENT = {67: "no such user", 68: "no such host", 65: "bad message data"}
# The program itself unusable (126 not executable, 127 not found through a wrapper,
# 78 EX_CONFIG): every message would fail alike, so the run stops as for a dead relay.
_BROKEN_PROGRAM = {126, 127, 78}


def from_settings(settings: Settings) -> SendmailTransport:
    """`DIGEST_TRANSPORT=sendmail`: DIGEST_SENDMAIL_PATH, timed out like SMTP."""
    return SendmailTransport(settings.sendmail_path, settings.smtp_timeout)


class SendmailTransport:
    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.relay = path  # for what the run says

    async def open(self) -> None:
        return None

    async def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        if recipient.startswith("-") or any(c in recipient for c in "\r\n\0"):
            return SendResult(False, f"554 refusing unsafe recipient {recipient[:80]!r}", True)
        seven = seven_bit_message(message)
        if seven is None:
            return SendResult(
                False,
                "554 this message cannot be re-encoded 7bit for sendmail",
                permanent=True,
                message_refused=True,
            )
        envelope_from = parseaddr(sender)[1] or sender
        try:
            proc = await asyncio.create_subprocess_exec(
                self.path,
                "-i",  # a line with a single dot is text, not the end
                "-f",
                envelope_from,
                "--",
                recipient,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            return SendResult(False, f"sendmail: cannot run {self.path}: {exc}", relay_down=True)
        try:
            output, _ = await asyncio.wait_for(proc.communicate(seven), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return SendResult(False, f"sendmail: timeout after {self.timeout:g}s")
        text = output.decode("utf-8", "replace").strip()[:300]
        code = proc.returncode
        if code == 0:
            return SendResult(True, f"250 accepted by {self.path}")
        reason = _PERMANENT.get(code or 0)
        detail = f"sendmail exit {code}: {text or reason or 'failed'}"
        return SendResult(
            False, detail, permanent=reason is not None, relay_down=code in _BROKEN_PROGRAM
        )

    async def close(self) -> None:
        return None
