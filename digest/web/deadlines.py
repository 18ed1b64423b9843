"""Read deadlines for the built-in server, against slow clients (slowloris).

uvicorn times out only idle keep-alive connections, and any byte received resets
that timer, so a client that sends a request line and headers one byte at a time,
or a body one byte at a time, holds a connection (and a socket) for ever; ASGI
middleware cannot help, since it runs once the headers are in (uvicorn issue #157
asks for `--timeout-request-start` / `--timeout-request-complete`, not built). This
protocol is uvicorn's h11 protocol plus two deadlines:

- headers: a request's line and headers must arrive within `header_timeout` seconds
  of the connection being ready for it (opened, or done with the previous request);
- body: its body must arrive within `body_timeout` seconds of its headers.

A connection past a deadline is closed (with a 408 when it had started a request).
These are absolute deadlines, not per-read ones, so trickling does not extend them.
A reverse proxy in front (nginx, Caddy) is still the right place for TLS and for
absorbing many slow clients; these deadlines keep the server sane without one.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("digest.web")

REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 28\r\n\r\nthe request took too long.\r\n"
)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines (set by `with_deadlines`)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    _deadline: asyncio.TimerHandle | None = None
    _waiting_for: object = None  # the h11 state (IDLE or SEND_BODY) it is armed for
    _started = False  # a byte of the current request has arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._track()

    def data_received(self, data: bytes) -> None:
        self._started = True
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _track(self) -> None:
        """Arm the deadline of the phase the client is in, once per phase."""
        if self.transport.is_closing():
            self._disarm()
            return
        state: object = self.conn.their_state
        if state is h11.IDLE and self.conn.our_state is not h11.IDLE:
            state = None  # a response is still going out: no request is awaited yet
        if state is self._waiting_for:
            return
        self._disarm()
        if state is h11.IDLE:
            self._started = False
            self._arm(h11.IDLE, self.header_timeout)
        elif state is h11.SEND_BODY:
            self._arm(h11.SEND_BODY, self.body_timeout)

    def _arm(self, state: object, seconds: float) -> None:
        self._waiting_for = state
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._waiting_for = None

    def _expired(self) -> None:
        phase = "headers" if self._waiting_for is h11.IDLE else "body"
        self._deadline = None
        self._waiting_for = None
        if self.transport.is_closing():
            return
        if phase == "body" or self._started:
            log.info("closing a connection whose request %s came too slowly", phase)
            if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE) and (
                self.cycle is None or not self.cycle.response_started
            ):
                self.transport.write(REQUEST_TIMEOUT_RESPONSE)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


def with_deadlines(header_timeout: float, body_timeout: float) -> type[DeadlineH11Protocol]:
    """The protocol class to give uvicorn (`Config(http=...)`), with these deadlines."""
    return type(
        "DeadlineH11Protocol",
        (DeadlineH11Protocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )
