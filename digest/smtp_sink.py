"""The built-in SMTP sink: a real SMTP server (aiosmtpd) on loopback that stores every
message it accepts as an `.eml` file. `digest demo` delivers to it; so can a developer.
"""

from __future__ import annotations

import itertools
import re
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

# The names this sink gives its files (and `digest demo` the HTML beside them).
SINK_FILE_RE = re.compile(r"\d{6}-[A-Za-z0-9_.@-]{1,100}\.(?:eml|html)")


def clear_sink_files(folder: Path) -> int:
    """Remove the files an earlier sink run wrote in `folder` (and their extracted
    `.html`), only those: anything else a user keeps there stays. Returns the count."""
    removed = 0
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.is_file() and SINK_FILE_RE.fullmatch(path.name):
            path.unlink()
            removed += 1
    return removed


class EmlFolderHandler:
    """Writes each accepted message to `folder/NNNNNN-recipient.eml`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        # After the highest number already there, not after the count of files: with a
        # file deleted, counting would reuse a number and sort a new message among old.
        taken = [int(p.name[:6]) for p in folder.glob("*.eml") if p.name[:6].isdigit()]
        self._counter = itertools.count(max(taken, default=0) + 1)
        self._lock = threading.Lock()
        self.paths: list[Path] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else "unknown"
        safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", rcpt)[:100]
        with self._lock:
            path = self.folder / f"{next(self._counter):06d}-{safe}.eml"
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        self.paths.append(path)
        return "250 Message accepted for delivery"


class SmtpSink:
    """Start with `with SmtpSink(folder) as sink:`; `sink.port` is the port it bound."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = EmlFolderHandler(folder)
        self.host = host
        self._controller = Controller(self.handler, hostname=host, port=port or _free_port(host))
        self.port = self._controller.port

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
