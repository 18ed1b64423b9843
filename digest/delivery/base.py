"""The one interface every transport implements (SMTP, file, sendmail)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

REPLY_MAX = 500  # characters of a reply kept (the outbox's last_error, the run's errors)
# C0 and C1 controls, DEL, and the bidi overrides that reorder what a terminal shows.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+")


@dataclass
class SendResult:
    """What the far side said. `permanent` failures (5xx) are never retried, and
    count a bounce on the subscriber unless `message_refused` (the message was refused
    for its size or content, not the address: no reason to stop writing to them);
    `relay_down`: the relay itself was not reached (nothing to learn about the message)."""

    ok: bool
    reply: str = ""
    permanent: bool = False
    relay_down: bool = False
    message_refused: bool = False


class Transport(Protocol):
    async def open(self) -> None: ...

    async def send(self, sender: str, recipient: str, message: bytes) -> SendResult: ...

    async def close(self) -> None: ...


def clean_reply(text: str) -> str:
    """What the far side said, safe to store and print: a reply is the relay's (or a
    sendmail program's) text, and a NUL in it fails PostgreSQL's insert of the whole
    result batch, an escape sequence would drive the operator's terminal through
    `digest status`. Line breaks (multi-line replies) become " / ", other controls "?"."""
    text = text.strip().replace("\r\n", "\n").replace("\n", " / ")
    return _UNPRINTABLE.sub("?", text)[:REPLY_MAX]
