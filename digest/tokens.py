"""Signed, expiring tokens for links in emails (unsubscribe, manage, confirm, view).

One salt per purpose, so a token made for viewing a digest can never unsubscribe.
Confirmation tokens also carry the subscriber's `token_version`, so a newer sign-up voids
older confirmation links. Manage, unsubscribe and confirm tokens name the subscriber's
row id as well as the address (`subscriber_payload`): ids are never reused, so a link
made for a deleted subscription never works for a later sign-up of the same address.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from digest.errors import InputError

PURPOSES = {
    "unsubscribe": 60 * 60 * 24 * 365,
    "manage": 60 * 60 * 24 * 90,
    "confirm": 60 * 60 * 24 * 2,
    "view": 60 * 60 * 24 * 365,
}


class TokenError(InputError):
    """A token that is forged, expired, or made for another purpose."""


@lru_cache(maxsize=64)
def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    """Cached: building the key derivation per link was ~15% of rendering a message."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret, salt=f"digest.{purpose}")


def make_token(secret: str, purpose: str, payload: Any) -> str:
    return _serializer(secret, purpose).dumps(payload)


def subscriber_payload(address: str, subscriber_id: int | None) -> Any:
    """What a manage or unsubscribe token carries: `[address, id]`, or the address
    alone when the row is not known (such links are checked by their age instead)."""
    return address if subscriber_id is None else [address, subscriber_id]


def read_token(secret: str, purpose: str, token: str, max_age: int | None = None) -> Any:
    """Verify (in constant time, by itsdangerous) and decode; TokenError otherwise."""
    return read_token_issued(secret, purpose, token, max_age)[0]


def read_token_issued(
    secret: str, purpose: str, token: str, max_age: int | None = None
) -> tuple[Any, datetime]:
    """The payload and when the token was made (UTC, whole seconds)."""
    try:
        return _serializer(secret, purpose).loads(
            token,
            max_age=max_age if max_age is not None else PURPOSES[purpose],
            return_timestamp=True,
        )
    except SignatureExpired:
        raise TokenError("this link has expired") from None
    except BadSignature:
        raise TokenError("this link is not valid") from None
