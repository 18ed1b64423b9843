"""What every route of the web app shares, kept in `app.state.web` (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from jinja2 import Environment

from digest.config import Settings
from digest.store import Engine
from digest.web.accounts import Accounts
from digest.web.mails import Mailer
from digest.web.security import Csrf
from digest.web.topics import Topic


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


def web(request: Request) -> WebContext:
    return request.app.state.web
