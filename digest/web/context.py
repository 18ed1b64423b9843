"""What every route of the web app shares, kept in `app.state.web` (no globals)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import Request
from jinja2 import Environment
from starlette.concurrency import run_in_threadpool

from digest.config import Settings
from digest.errors import InputError
from digest.models import Subscriber
from digest.store import DatabaseError, Engine
from digest.web.accounts import Accounts
from digest.web.mails import Mailer
from digest.web.security import Csrf
from digest.web.topics import Topic

log = logging.getLogger("digest.web")


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    env: Environment
    accounts: Accounts
    mailer: Mailer
    csrf: Csrf
    catalogue: list[Topic]
    timezones: list[str]

    async def finish_signup(self, sub: Subscriber) -> None:
        """Store the sign-up and mail it, after the visitor has their answer: the
        work differs for known and new addresses, and its time must not show."""
        try:
            mail = await run_in_threadpool(self.accounts.register, sub)
        except (InputError, DatabaseError) as exc:
            log.warning("could not store a sign-up: %s", exc)
            return
        await self.mailer.send(mail)


def web(request: Request) -> WebContext:
    return request.app.state.web
