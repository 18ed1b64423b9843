"""Link tokens: `make_token` signs without itsdangerous' per-token work, yet makes the
very tokens itsdangerous makes (so links in mail already sent keep working, and a
token made either way reads back)."""

import time

import pytest

from digest.tokens import PURPOSES, TokenError, _serializer, make_token, read_token

SECRET = "a-secret-of-reasonable-length-0123456789"
PAYLOADS = [
    "12:2026-11-29",
    ["ada@example.org", 12],
    ["señora.ñ@example.org", 9_999_999_999],
    ["<a href=x>\r\n\u2028\"'@example.org", 0, 3],
]


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_same_token_as_itsdangerous_and_read_back(purpose, payload):
    for _ in range(5):  # both within one second (the token carries the second)
        before = int(time.time())
        ours, theirs = (
            make_token(SECRET, purpose, payload),
            _serializer(SECRET, purpose).dumps(payload),
        )
        if int(time.time()) == before:
            break
    assert ours == theirs
    assert read_token(SECRET, purpose, ours) == payload


def test_a_long_payload_itsdangerous_would_compress_still_reads_back():
    payload = ["x" * 300 + "@example.org", 1]
    assert read_token(SECRET, "unsubscribe", make_token(SECRET, "unsubscribe", payload)) == payload


def test_purpose_and_secret_still_bind_the_token():
    token = make_token(SECRET, "view", "1:2026-11-29")
    with pytest.raises(TokenError):
        read_token(SECRET, "unsubscribe", token)
    with pytest.raises(TokenError):
        read_token("another-secret-of-reasonable-length", "view", token)
    with pytest.raises(ValueError):
        make_token(SECRET, "no-such-purpose", 1)
