"""A real SMTP server (aiosmtpd on loopback) that misbehaves on purpose, for the
delivery and crash-safety tests: scripted replies per address at RCPT, at the DATA
command (before 354) or at the end of the data, a connection dropped at either, slow
acceptance, and a listener that never says a word. It records every message it
accepted, with the time it said 250."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from conftest import free_port

DROP = "DROP"  # a scripted DATA reply: close the connection instead of answering


@dataclass
class Accepted:
    recipient: str
    message: bytes
    at: float  # time.time() when the server said 250

    @property
    def message_id(self) -> str:
        msg = email.message_from_bytes(self.message, policy=email.policy.default)
        return str(msg["Message-ID"])


@dataclass
class FaultyHandler:
    """`rcpt[address]` / `data_command[address]` / `data[address]`: replies used (and
    used up) one per attempt before that address is accepted, at RCPT, at the DATA
    command (instead of 354) and at the end of the data; `delay`: seconds each DATA
    takes."""

    rcpt: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, list[str]] = field(default_factory=dict)
    data_command: dict[str, list[str]] = field(default_factory=dict)
    delay: float = 0.0
    accepted: list[Accepted] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ehlos: int = 0  # one per connection (two with STARTTLS)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        with self.lock:
            self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        with self.lock:
            self.tries[address] += 1
            script = self.rcpt.get(address)
            if script:
                return script.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        recipient = envelope.rcpt_tos[0]
        with self.lock:
            script = self.data.get(recipient)
            reply = script.pop(0) if script else None
        if reply == DROP:
            assert server.transport is not None
            server.transport.abort()
            return "250 never seen"
        if reply:
            return reply
        content = envelope.original_content or b""
        with self.lock:
            self.accepted.append(Accepted(recipient, content, time.time()))
        return "250 2.0.0 queued"

    def by_recipient(self) -> dict[str, list[Accepted]]:
        with self.lock:
            out: dict[str, list[Accepted]] = defaultdict(list)
            for a in self.accepted:
                out[a.recipient].append(a)
            return dict(out)


class FaultySMTP(SMTP):
    """aiosmtpd's server, with the handler's `data_command` script answered to DATA."""

    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        rcpts = self.envelope.rcpt_tos if self.envelope is not None else []
        if isinstance(handler, FaultyHandler) and rcpts:
            with handler.lock:
                script = handler.data_command.get(rcpts[0])
                reply = script.pop(0) if script else None
            if reply == DROP:
                assert self.transport is not None
                self.transport.abort()
                return
            if reply:
                await self.push(reply)
                return
        await super().smtp_DATA(arg)


class FaultyController(Controller):
    def factory(self) -> SMTP:
        return FaultySMTP(self.handler, **self.SMTP_kwargs)


class FaultyServer:
    """`with FaultyServer(handler) as server:`; `server.port`."""

    def __init__(self, handler: FaultyHandler, port: int | None = None, **kwargs: Any) -> None:
        self.handler = handler
        self.port = port or free_port()
        self.controller = FaultyController(handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> FaultyServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class SilentServer:
    """Accepts TCP connections and never sends a byte (no greeting, no replies)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()
