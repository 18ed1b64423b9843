"""File transport: one `.eml` per message in a folder, for development."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

from digest.config import Settings
from digest.delivery.base import SendResult


def from_settings(settings: Settings) -> FileTransport:
    """`DIGEST_TRANSPORT=file`: messages in DIGEST_OUTBOX_DIR (default ./outbox)."""
    return FileTransport(settings.outbox_dir or Path("outbox"))


class FileTransport:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._counter: itertools.count[int] | None = None

    async def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._counter is None:
            self._counter = itertools.count(len(list(self.folder.glob("*.eml"))) + 1)

    async def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        await self.open()
        assert self._counter is not None
        safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", recipient)[:100]
        path = self.folder / f"{next(self._counter):06d}-{safe}.eml"
        try:
            # Written aside and renamed, so a reader never sees half a message.
            partial = path.with_suffix(".eml.part")
            partial.write_bytes(message)
            os.replace(partial, path)
        except OSError as exc:
            return SendResult(False, f"file: {exc}")
        return SendResult(True, f"250 written {path.name}")

    async def close(self) -> None:
        return None
