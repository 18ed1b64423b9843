"""The envelope sender (SMTP `MAIL FROM`, `sendmail -f`) of a digest: where bounces go.

With DIGEST_BOUNCE_DOMAIN set it is VERP-style, `bounces+<token>@<domain>`, the token
naming the subscriber (signed, see `digest.tokens.make_mail_token`), so a bounce that a
relay sends days later, however vague, maps to its subscriber in `digest inbound`.
Unset, it is the From address, as before: a relay that only accepts its login's
address as sender keeps working, and nobody's bounces land in an unread mailbox.
"""

from __future__ import annotations

import functools
from email.utils import parseaddr

from digest.config import Settings
from digest.tokens import make_mail_token

BOUNCE_LOCAL_PART = "bounces"


def envelope_sender(settings: Settings, subscriber_id: int) -> str:
    """The bare address a digest for `subscriber_id` is sent from."""
    if not settings.bounce_domain:
        return _address_of(settings.from_address)
    token = make_mail_token(settings.secret_key, "bounce", subscriber_id)
    return f"{BOUNCE_LOCAL_PART}+{token}@{settings.bounce_domain}"


@functools.lru_cache(maxsize=16)
def _address_of(from_address: str) -> str:
    """`Name <addr>` -> `addr`: parsed once per From setting, not once per message."""
    return parseaddr(from_address)[1] or from_address
