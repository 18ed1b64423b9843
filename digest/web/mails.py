"""The two emails the web app sends: "confirm your subscription" and "here is your
manage link". Both go through digest.delivery's transport, carry only the address
and our own links (never text a visitor typed), and every link is built on
DIGEST_BASE_URL.
"""

from __future__ import annotations

import email.policy
import email.utils
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from jinja2 import Environment

from digest.config import Settings
from digest.delivery import Transport, make_transport
from digest.rendering import subscriber_links
from digest.tokens import make_token

log = logging.getLogger("digest.web.mails")

SUBJECTS = {
    "confirm": "Confirm your paper digest subscription",
    "manage": "Your paper digest link",
}


@dataclass(frozen=True)
class Mail:
    """A mail to send after the response: which kind, to whom, with which links."""

    kind: str  # confirm | manage
    to: str
    links: dict[str, str]


def confirm_link(settings: Settings, address: str, subscriber_id: int | None, version: int) -> str:
    """The token names the row and its `token_version`: a newer sign-up, or a new row
    for the address after a delete, voids it."""
    token = make_token(settings.secret_key, "confirm", [address, subscriber_id, version])
    return f"{settings.base_url}/confirm/{token}"


def confirmation_mail(
    settings: Settings, address: str, subscriber_id: int | None, version: int
) -> Mail:
    link = confirm_link(settings, address, subscriber_id, version)
    return Mail("confirm", address, {"confirm": link})


def manage_mail(settings: Settings, address: str, subscriber_id: int | None) -> Mail:
    return Mail("manage", address, subscriber_links(settings, address, None, subscriber_id))


def build(settings: Settings, env: Environment, mail: Mail) -> EmailMessage:
    context = {"email": mail.to, "links": mail.links, "base_url": settings.base_url}
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = settings.from_address
    msg["To"] = mail.to
    msg["Subject"] = SUBJECTS[mail.kind]
    msg["Date"] = email.utils.formatdate(localtime=False)
    domain = settings.from_address.rsplit("@", 1)[-1].strip("> ")
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(env.get_template(f"web/mail_{mail.kind}.txt").render(context))
    msg.add_alternative(
        env.get_template(f"web/mail_{mail.kind}.html").render(context), subtype="html"
    )
    return msg


class Mailer:
    """Sends one mail per call over a fresh transport connection; a failure is logged,
    not raised: the visitor already has their answer, which must not depend on it."""

    def __init__(
        self,
        settings: Settings,
        env: Environment,
        transport_factory: Callable[[], Transport] | None = None,
    ) -> None:
        self.settings = settings
        self.env = env
        self.transport_factory = transport_factory or (lambda: make_transport(settings))

    async def send(self, mail: Mail) -> bool:
        message = build(self.settings, self.env, mail).as_bytes()
        sender = email.utils.parseaddr(self.settings.from_address)[1] or self.settings.from_address
        transport = self.transport_factory()
        try:
            await transport.open()
            result = await transport.send(sender, mail.to, message)
        except Exception as exc:  # noqa: BLE001 - any transport failure is only logged
            log.warning("could not send %s mail: %s", mail.kind, exc)
            return False
        finally:
            try:
                await transport.close()
            except Exception:  # noqa: BLE001
                log.debug("closing the transport failed", exc_info=True)
        if not result.ok:
            log.warning("could not send %s mail: %s", mail.kind, result.reply)
        return result.ok
