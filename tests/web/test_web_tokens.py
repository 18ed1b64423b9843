"""Link tokens: `make_token` signs without itsdangerous' per-token work, yet makes the
very tokens itsdangerous makes (so links in mail already sent keep working, and a
token made either way reads back)."""

import hashlib
import hmac
import time

import pytest
from itsdangerous import Signer
from itsdangerous.encoding import base64_decode, base64_encode

from digest.tokens import (
    PURPOSES,
    FeedbackSigner,
    FeedbackTarget,
    KeyedMac,
    TokenError,
    _feedback_signer,
    _serializer,
    make_feedback_token,
    make_token,
    read_feedback_token,
    read_token,
)

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


FEEDBACK_IDS = [
    "2401.00001",
    "hf:2411.12345v2",
    "señora/ñ-ü",
    "𝔘" * 200,  # the longest id, 4 UTF-8 bytes a character
    "<a href=x>\r\n\u2028\"'",
    "",
]


@pytest.mark.parametrize("paper_id", FEEDBACK_IDS, ids=range(len(FEEDBACK_IDS)))
def test_feedback_tokens_are_what_the_signer_makes_and_read_back(paper_id):
    """A feedback token is `Signer.sign` of `<id>.<version>.<day>.<paper>` (what every
    link already sent carries), made from MAC states keyed once per subscriber."""
    for sub_id, version, day in [(1, 0, 20_000), (9_999_999_999, 7, 0), (42, 123, 999_999)]:
        signer = FeedbackSigner(SECRET, sub_id, version, day)
        paper = base64_encode(paper_id).decode()
        expected = _feedback_signer(SECRET).sign(f"{sub_id}.{version}.{day}.{paper}").decode()
        assert signer.token(paper_id) == expected
        assert make_feedback_token(SECRET, sub_id, version, paper_id, day) == expected
        if paper_id:  # an empty id is no paper: the reader refuses it
            assert read_feedback_token(SECRET, expected, today=day) == FeedbackTarget(
                sub_id, version, paper_id, day
            )


@pytest.mark.parametrize("method", [hashlib.sha1, hashlib.sha256])
@pytest.mark.parametrize("key_len", [0, 20, 32, 64, 65, 200])
def test_a_keyed_mac_is_hmac_under_the_signer_key(method, key_len):
    """`KeyedMac` is HMAC (RFC 2104) under the key the signer derives: keys shorter
    than a block, a block, and longer (hashed first), with a prefix taken in or not."""
    signer = Signer(b"k" * key_len, key_derivation="none", digest_method=method)
    mac = KeyedMac.of(signer)
    for message in [b"", b"1.0.20000.MjQwMS4wMDAwMQ", b"x" * 1000]:
        expected = hmac.new(signer.derive_key(), message, method).digest()
        assert mac.digest(message) == expected
        assert mac.after(message[:7]).digest(message[7:]) == expected
        assert base64_decode(signer.get_signature(message)) == expected
    other = FeedbackSigner("another-secret-of-reasonable-length", 1, 0, 20_000).token("2401.1")
    with pytest.raises(TokenError):
        read_feedback_token(SECRET, other, today=20_000)
