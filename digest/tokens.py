"""Signed, expiring tokens for links in emails (unsubscribe, manage, confirm, view).

One salt per purpose, so a token made for viewing a digest can never unsubscribe.
Confirmation tokens also carry the subscriber's `token_version`, so a newer sign-up voids
older confirmation links. Manage, unsubscribe and confirm tokens name the subscriber's
row id as well as the address (`subscriber_payload`): ids are never reused, so a link
made for a deleted subscription never works for a later sign-up of the same address.

Feedback tokens ("more / less like this" on every card) are many per message, so they
are made by a cheaper signer: itsdangerous' `Signer` over a key derived once per
secret, its signature made by `FeedbackSigner` from hash states keyed once per
subscriber (~0.8 us a token instead of ~19 us: 20 cards x 100,000 subscribers is
1.6 s, not 40), read back by the `Signer` itself. They carry the row id, its
`token_version`, the paper id and the day they were made; the vote is a query
parameter, since either vote is the subscriber's to give.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, Signer, URLSafeTimedSerializer
from itsdangerous.encoding import int_to_bytes

from digest.errors import InputError

PURPOSES = {
    "unsubscribe": 60 * 60 * 24 * 365,
    "manage": 60 * 60 * 24 * 90,
    "confirm": 60 * 60 * 24 * 2,
    "view": 60 * 60 * 24 * 365,
}


class TokenError(InputError):
    """A token that is forged, expired, or made for another purpose."""


# What a token we make is written in (URL-safe base64 and dots). itsdangerous decodes
# base64 leniently, skipping other characters: without this check a link with junk
# added (`...DE%ff`, `...DE!`) would still work, one token would have many spellings.
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_.-]+")


def _well_formed(token: object) -> bool:
    return isinstance(token, str) and _TOKEN_CHARS.fullmatch(token) is not None


@lru_cache(maxsize=64)
def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    """Cached: building the key derivation per link was ~15% of rendering a message."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret, salt=f"digest.{purpose}")


# HMAC (RFC 2104) is two hashes: of the key XOR ipad then the message, and of the key
# XOR opad then the first hash.
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class KeyedMac:
    """The HMAC a signer signs with, as the two hash states it is, each having taken
    its padded key in once: itsdangerous derives the key and pads it again for every
    signature, and copying the two states costs two thirds of copying an
    `hmac.HMAC` (a Python object around them). A message signs ~25 tokens."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, inner: Any, outer: Any) -> None:
        self._inner, self._outer = inner, outer

    @classmethod
    def of(cls, signer: Signer) -> KeyedMac:
        make = signer.digest_method
        inner, outer = make(), make()
        key = signer.derive_key()
        if len(key) > inner.block_size:
            key = make(key).digest()
        key = key.ljust(inner.block_size, b"\0")
        inner.update(key.translate(_IPAD))
        outer.update(key.translate(_OPAD))
        return cls(inner, outer)

    def after(self, prefix: bytes) -> KeyedMac:
        """The MAC having taken `prefix` in: for many messages that start with it."""
        inner = self._inner.copy()
        inner.update(prefix)
        return KeyedMac(inner, self._outer)

    def digest(self, data: bytes) -> bytes:
        """HMAC(key, prefix + data)."""
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


@lru_cache(maxsize=64)
def _keyed_mac(secret: str, purpose: str) -> KeyedMac:
    """The HMAC `_serializer(secret, purpose)` signs with, keyed once."""
    return KeyedMac.of(_serializer(secret, purpose).make_signer())


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """itsdangerous' `base64_encode` (URL-safe, unpadded) of bytes, without its three
    layers of wrappers (a message encodes ~30 parts of tokens)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


# `json.dumps(payload, ensure_ascii=False, separators=(",", ":"))`, without building
# the encoder for every call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=2)
def _timestamp_part(second: int) -> bytes:
    """A token's timestamp as itsdangerous writes it (tokens made in one second share it)."""
    return _b64(int_to_bytes(second))


def make_token(secret: str, purpose: str, payload: Any) -> str:
    """What `URLSafeTimedSerializer.dumps` makes for a payload it would not compress, and
    `read_token` (itsdangerous) reads it: every message carries three of these, and
    itsdangerous took ~47 us a token (a zlib attempt, the key derived again), ~5% of
    rendering a digest. Links are small JSON (an address and an id), never compressed."""
    body = _b64(_JSON.encode(payload).encode())
    value = body + b"." + _timestamp_part(int(time.time()))
    return (value + b"." + _b64(_keyed_mac(secret, purpose).digest(value))).decode()


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
    if not _well_formed(token):
        raise TokenError("this link is not valid")
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


FEEDBACK_MAX_AGE_DAYS = 365
# A paper id is at most 200 characters (Paper.id), up to 4 UTF-8 bytes each (the file
# and feed sources keep non-ASCII ids): 800 bytes, 1,067 base64 characters.
_FEEDBACK_PAPER_CHARS = -(-200 * 4 * 4 // 3)
_FEEDBACK_MAX_LEN = _FEEDBACK_PAPER_CHARS + 100  # ids, day, dots and the signature
_FEEDBACK_RE = re.compile(
    rf"(\d{{1,10}})\.(\d{{1,10}})\.(\d{{1,6}})\.([A-Za-z0-9_-]{{1,{_FEEDBACK_PAPER_CHARS}}})"
)
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class FeedbackTarget:
    """What a feedback token names: a subscriber row (and its token_version) and a paper."""

    subscriber_id: int
    token_version: int
    paper_id: str
    issued_day: int  # days since 1970-01-01 (UTC)


@lru_cache(maxsize=16)
def _feedback_signer(secret: str) -> Signer:
    key = hmac.new(secret.encode(), b"digest.feedback", hashlib.sha256).digest()
    return Signer(key, key_derivation="none", digest_method=hashlib.sha256)


@lru_cache(maxsize=16)
def _feedback_mac(secret: str) -> KeyedMac:
    return KeyedMac.of(_feedback_signer(secret))


def today_number(now: datetime | None = None) -> int:
    return ((now or datetime.now(UTC)).date() - _EPOCH).days


@lru_cache(maxsize=1 << 14)
def _paper_part(paper_id: str) -> tuple[str, bytes]:
    """A paper id as a feedback token carries it (every subscriber shown the paper)."""
    part = _b64(paper_id.encode())
    return part.decode(), part


class FeedbackSigner:
    """The feedback tokens of one subscriber row and `token_version` on one day: a
    message signs one per card, and every token starts with the same
    `<id>.<version>.<day>.`, so the MAC has taken that prefix in once and each token
    only adds its paper (the same bytes `_feedback_signer(secret).sign` makes)."""

    __slots__ = ("prefix", "_mac")

    def __init__(self, secret: str, subscriber_id: int, token_version: int, day: int) -> None:
        self.prefix = f"{subscriber_id}.{token_version}.{day}."
        self._mac = _feedback_mac(secret).after(self.prefix.encode())

    def token(self, paper_id: str) -> str:
        paper, paper_bytes = _paper_part(paper_id)
        return f"{self.prefix}{paper}.{_b64(self._mac.digest(paper_bytes)).decode()}"


def make_feedback_token(
    secret: str, subscriber_id: int, token_version: int, paper_id: str, day: int | None = None
) -> str:
    day = today_number() if day is None else day
    return FeedbackSigner(secret, subscriber_id, token_version, day).token(paper_id)


def read_feedback_token(secret: str, token: str, today: int | None = None) -> FeedbackTarget:
    """Verify (constant time) and decode a feedback token; TokenError otherwise."""
    if not _well_formed(token) or len(token) > _FEEDBACK_MAX_LEN:
        raise TokenError("this link is not valid")
    try:
        payload = _feedback_signer(secret).unsign(token).decode()
    except (BadSignature, UnicodeError):
        raise TokenError("this link is not valid") from None
    found = _FEEDBACK_RE.fullmatch(payload)
    if found is None:
        raise TokenError("this link is not valid")
    sub_id, version, day, paper = found.groups()
    try:
        paper_id = base64.urlsafe_b64decode(paper + "=" * (-len(paper) % 4)).decode()
    except (binascii.Error, UnicodeError):
        raise TokenError("this link is not valid") from None
    if (today_number() if today is None else today) - int(day) > FEEDBACK_MAX_AGE_DAYS:
        raise TokenError("this link has expired")
    return FeedbackTarget(int(sub_id), int(version), paper_id, int(day))


# ------------------------------------------------------------------ mail address tokens
#
# The tokens in the VERP envelope sender (`bounces+<token>@domain`) and in the
# List-Unsubscribe mailto (`digest+unsubscribe-<token>@domain`): `<id>-<sig>`, the
# subscriber's row id in decimal and 128 bits of an HMAC-SHA256 (itsdangerous Signer,
# one salt per purpose) in lower-case base32. Unlike the web tokens they must survive
# relays and mail clients that fold the case of a local part, need no quoting and fit
# a 64-octet local part (`bounces+123456-<26>` is 41 octets), so they are not
# `dumps()` strings. No timestamp: bounces arrive days and complaints weeks later, and
# a replayed token can only affect the subscriber who holds it.

MAIL_PURPOSES = ("bounce", "unsubscribe-mail")
_MAIL_SIG_BYTES = 16
_MAIL_TOKEN_RE = re.compile(r"(?<![0-9a-z])([0-9]{1,12})-([a-z2-7]{26})(?![0-9a-z])")


@lru_cache(maxsize=16)
def _mail_signer(secret: str, purpose: str) -> Signer:
    if purpose not in MAIL_PURPOSES:
        raise ValueError(f"unknown mail token purpose {purpose!r}")
    return Signer(secret, salt=f"digest.mail.{purpose}", digest_method=hashlib.sha256)


@lru_cache(maxsize=16)
def _mail_mac(secret: str, purpose: str) -> KeyedMac:
    """The HMAC `_mail_signer(secret, purpose)` signs with, keyed once (one token per
    message)."""
    return KeyedMac.of(_mail_signer(secret, purpose))


def _mail_signature(secret: str, purpose: str, ident: int) -> str:
    # = base64_decode(signer.get_signature(...))
    digest = _mail_mac(secret, purpose).digest(f"{purpose}:{ident}".encode())
    return base64.b32encode(digest[:_MAIL_SIG_BYTES]).decode("ascii").rstrip("=").lower()


def make_mail_token(secret: str, purpose: str, ident: int) -> str:
    """`<id>-<26 base32 characters>`, only `[0-9a-z-]`."""
    return f"{ident}-{_mail_signature(secret, purpose, ident)}"


def find_mail_token(secret: str, purpose: str, text: str) -> int | None:
    """The subscriber id of the first valid `purpose` token anywhere in `text` (an
    address, a Subject), compared in constant time; None when there is none. A token
    made for the other purpose, or with a wrong signature, is no token."""
    for found in _MAIL_TOKEN_RE.finditer(text[:20_000].lower()):
        ident = int(found.group(1))
        if hmac.compare_digest(found.group(2), _mail_signature(secret, purpose, ident)):
            return ident
    return None
