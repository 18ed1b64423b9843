"""File transport: one `.eml` per message in a folder, for development."""

from __future__ import annotations

import re
from pathlib import Path

from digest.delivery.base import SendResult


class FileTransport:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    async def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", recipient)[:100]
        n = len(list(self.folder.glob("*.eml")))
        path = self.folder / f"{n + 1:06d}-{safe}.eml"
        path.write_bytes(message)
        return SendResult(True, f"250 written {path.name}")

    async def close(self) -> None:
        return None
