"""The one interface every transport implements (SMTP, file, sendmail)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class SendResult:
    """What the far side said. `permanent` failures (5xx) are never retried;
    `relay_down`: the relay itself was not reached (nothing to learn about the message)."""

    ok: bool
    reply: str = ""
    permanent: bool = False
    relay_down: bool = False


class Transport(Protocol):
    async def open(self) -> None: ...

    async def send(self, sender: str, recipient: str, message: bytes) -> SendResult: ...

    async def close(self) -> None: ...
