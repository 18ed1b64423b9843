"""A digest claimed by the sender but not sent yet is not sent once its subscriber
unsubscribes (the web's one-click POST, RFC 8058), pauses (`digest pause`) or is
deleted (`digest delete`): the sender checks right before sending, not only when it
claimed the row. A real aiosmtpd server holds the first send while they do it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field

import httpx
from conftest import TEST_SECRET, wait_for
from fault_smtp import FaultyHandler, FaultyServer
from sqlalchemy import event
from test_delivery import fast, queue, rows, send
from web_served import served

from digest import store
from digest.delivery import sender
from digest.delivery.sender import SendReport
from digest.tokens import make_token

ADDRS = [f"user{i}@example.org" for i in range(5)]
HELD, UNSUBSCRIBED, PAUSED, DELETED, STAYS = ADDRS


@dataclass
class HoldingHandler(FaultyHandler):
    """Holds the DATA of `held` until `go` is set; `entered` says when it got there."""

    held: str = ""
    entered: threading.Event = field(default_factory=threading.Event)
    entered_at: float = 0.0
    go: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if envelope.rcpt_tos and envelope.rcpt_tos[0] == self.held:
            self.entered_at = time.monotonic()
            self.entered.set()
            await asyncio.get_running_loop().run_in_executor(None, self.go.wait, 30)
        return await super().handle_DATA(server, session, envelope)


def test_no_digest_goes_to_someone_who_left_while_it_waited_its_turn(engine, settings, cli):
    queue(engine, ADDRS)
    handler = HoldingHandler(held=HELD)
    report: list[SendReport] = []
    with FaultyServer(handler) as server:
        # a timeout long enough for the held send to outlast the three commands
        s = fast(settings, server.port, smtp_pool_size=1, smtp_timeout=60.0)
        sending = threading.Thread(target=lambda: report.append(send(engine, s)), daemon=True)
        sending.start()
        # The sender holds every row by now (it claimed them with the first one),
        # each checked active; the first send is stuck in the server.
        assert handler.entered.wait(15)
        with served(settings, engine) as base, httpx.Client(base_url=base) as client:
            sub_id = store.get_subscriber(engine, UNSUBSCRIBED).id
            token = make_token(TEST_SECRET, "unsubscribe", [UNSUBSCRIBED, sub_id])
            one_click = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
            assert one_click.status_code == 200, one_click.text[:300]
        assert cli("pause", PAUSED).code == 0
        assert cli("delete", DELETED, "--yes").code == 0
        # The check made before the held send is stale now (time, not a sleep for an
        # event): the rows after it must be checked again before they go.
        wait_for(lambda: time.monotonic() >= handler.entered_at + sender.RECHECK_AFTER)
        handler.go.set()
        sending.join(30)
        assert not sending.is_alive()

    got = handler.by_recipient()
    assert sorted(got) == [HELD, STAYS]
    assert all(len(mails) == 1 for mails in got.values())
    assert report[0].sent == 2 and report[0].not_sent == 3 and report[0].failed == 0
    outbox = rows(engine)
    assert DELETED not in outbox  # deleted with its subscriber, never sent
    for address, status in ((UNSUBSCRIBED, "unsubscribed"), (PAUSED, "paused")):
        row = outbox[address]
        assert row.status == "failed" and row.sent_at is None
        assert row.last_error == f"not sent: the subscriber is no longer active ({status})"
    # `digest status` names why they were not sent.
    shown = json.loads(cli("status", "--json").stdout)
    reasons = json.dumps(shown)
    assert "no longer active (unsubscribed)" in reasons and "(paused)" in reasons


def test_the_check_is_one_query_per_batch_not_one_per_message(engine, settings, smtp_sink):
    """400 digests through a fast sink: the subscribers' statuses are read a few
    times (a batch of up to CHECK_BATCH held rows at a time), never once per send."""
    addresses = [f"reader{i}@example.org" for i in range(400)]
    queue(engine, addresses)
    reads: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM subscriber" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        report = send(engine, fast(settings, smtp_sink.port, smtp_pool_size=4))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert report.sent == 400 and report.not_sent == 0
    assert len(smtp_sink.messages()) == 400
    assert 2 <= len(reads) <= 40, len(reads)  # one per message would be 400
