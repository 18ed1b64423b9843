"""Optional DKIM signing with dkimpy, from DIGEST_DKIM_KEY_FILE / SELECTOR / DOMAIN.

Messages are signed when they are sent, not when they are rendered, so a key set up
(or rotated) after an edition was built still applies. dkimpy signs the headers
RFC 6376 recommends, which leaves out `List-Unsubscribe-Post`; we add it, because
one-click unsubscribe (RFC 8058) requires both List-Unsubscribe headers be signed.

A message with 8bit parts (a digest's text) is signed re-encoded 7bit, as RFC 6376
5.3 asks: a relay without 8BITMIME would otherwise re-encode it after signing and
break the signature. So a signed digest costs one encoding of its text when sent.
"""

from __future__ import annotations

import re

from digest.config import Settings
from digest.delivery.downgrade import seven_bit_message
from digest.errors import ConfigError

EXTRA_HEADERS = (b"list-unsubscribe", b"list-unsubscribe-post")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.ASCII)
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[A-Za-z0-9-]{{2,63}}", re.ASCII)


class DkimSigner:
    def __init__(self, key: bytes, selector: str, domain: str) -> None:
        self.key = key
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")

    def sign(self, message: bytes) -> bytes:
        """`message` 7bit (when it can be made so) with its DKIM-Signature header."""
        # Imported here: dkimpy brings dnspython (~25 ms), and most senders sign nothing.
        import dkim

        message = seven_bit_message(message) or message
        linesep = b"\r\n" if b"\r\n" in message[:2000] else b"\n"
        headers = dkim.DKIM(message).default_sign_headers()
        present = {h.lower() for h in headers}
        for name in EXTRA_HEADERS:
            if name not in present and _has_header(message, name):
                headers.append(name)
        signature = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            include_headers=headers,
            linesep=linesep,
        )
        return signature + message


def _has_header(message: bytes, name: bytes) -> bool:
    head = message.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    return any(line.lower().startswith(name + b":") for line in head.splitlines())


def make_signer(settings: Settings) -> DkimSigner | None:
    """None when DKIM is not configured; a ConfigError when it is half configured."""
    parts = (settings.dkim_key_file, settings.dkim_selector, settings.dkim_domain)
    if not any(parts):
        return None
    if not all(parts):
        raise ConfigError(
            "DKIM needs all of DIGEST_DKIM_KEY_FILE, DIGEST_DKIM_SELECTOR and DIGEST_DKIM_DOMAIN"
        )
    assert settings.dkim_key_file is not None
    try:
        key = settings.dkim_key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"DIGEST_DKIM_KEY_FILE: cannot read {settings.dkim_key_file}: {exc}"
        ) from None
    if b"PRIVATE KEY" not in key:
        raise ConfigError(
            f"DIGEST_DKIM_KEY_FILE: {settings.dkim_key_file} is not a PEM private key"
        )
    # Both are written into the DKIM-Signature header as they are (dkimpy checks
    # neither): a line break would add a header to every digest, a space or ";"
    # break the signature. The selector is DNS labels, underscores allowed.
    for name, value, pattern in (
        ("DIGEST_DKIM_SELECTOR", settings.dkim_selector, _SELECTOR),
        ("DIGEST_DKIM_DOMAIN", settings.dkim_domain, _DOMAIN),
    ):
        if not pattern.fullmatch(value):
            raise ConfigError(f"{name}: expected a DNS name such as mail2026, got {value[:100]!r}")
    signer = DkimSigner(key, settings.dkim_selector, settings.dkim_domain)
    try:
        # A key dkimpy cannot use (cut short, EC, encrypted) would fail every message
        # at send time, each one retried until it ages out: refuse it now instead.
        signer.sign(_PROBE)
    except Exception as exc:  # dkimpy raises DKIMException, ValueError, binascii.Error...
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ConfigError(
            f"DIGEST_DKIM_KEY_FILE: {settings.dkim_key_file} is not a usable RSA or "
            f"Ed25519 private key: {reason}"
        ) from None
    return signer


# A minimal message signed once when the signer is made, to try the key.
_PROBE = b"From: probe@example.org\r\nSubject: probe\r\n\r\nprobe\r\n"
