"""Reading one inbound message safely: a bounded read of stdin, a parse that cannot
raise, and header and part access that survives whatever a stranger sends (no header
section, bytes that are no charset, a boundary that never comes, parts nested a
thousand deep)."""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.header
import email.policy
import re
from collections.abc import Iterator
from email.message import Message
from email.parser import HeaderParser
from typing import BinaryIO

# What is kept of a message. A DSN or ARF report names its subscriber in the first
# kilobytes (headers, the report part); a returned digest is under 100 kB. The rest of
# a larger message is read and dropped, so the MTA's pipe never breaks (EPIPE).
MAX_MESSAGE_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
MAX_PARTS = 64  # parts looked at per message
MAX_DEPTH = 4  # multipart levels looked into (never into a returned message's parts)
MAX_TEXT = 64 * 1024  # characters of one text part looked at


def read_capped(stream: BinaryIO, limit: int = MAX_MESSAGE_BYTES) -> tuple[bytes, int]:
    """The first `limit` bytes of `stream`, and how many bytes it held in all."""
    kept = stream.read(limit)
    total = len(kept)
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
    return kept, total


def parse(data: bytes) -> Message | None:
    """The message, or None when the parser gives up (nesting deeper than Python's
    recursion limit). compat32, as flufl.bounce's own tests parse."""
    try:
        return email.message_from_bytes(data, policy=email.policy.compat32)
    except (RecursionError, ValueError, TypeError, LookupError, IndexError):
        return None


def header_values(msg: Message, name: str) -> list[str]:
    """Every value of header `name`, as text (RFC 2047 words decoded where possible)."""
    try:
        raw = msg.get_all(name) or []
    except (ValueError, TypeError, LookupError):
        return []
    values = []
    for value in raw[:20]:
        text = str(value)[:4000]
        with contextlib.suppress(ValueError, TypeError, LookupError, email.errors.HeaderParseError):
            text = str(email.header.make_header(email.header.decode_header(text)))
        values.append(text)
    return values


def parts(msg: Message) -> Iterator[Message]:
    """The message and its parts, breadth first, at most MAX_PARTS of them and
    MAX_DEPTH multipart levels down. A returned message (message/rfc822) is yielded
    but never opened: what it holds is someone else's mail."""
    queue: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while queue and seen < MAX_PARTS:
        part, depth = queue.pop(0)
        seen += 1
        yield part
        if depth >= MAX_DEPTH or not part.is_multipart():
            continue
        if part.get_content_maintype() != "multipart":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            queue.extend((p, depth + 1) for p in payload if isinstance(p, Message))


def fields(part: Message) -> list[tuple[str, str]]:
    """The `Name: value` fields of a machine-readable report part
    (message/delivery-status, message/feedback-report, text/rfc822-headers, or a
    returned message's header section), lower-cased names."""
    payload = part.get_payload()
    blocks: list[Message] = []
    if isinstance(payload, list):
        blocks = [p for p in payload[:50] if isinstance(p, Message)]
    elif isinstance(payload, str):
        try:
            blocks = [HeaderParser(policy=email.policy.compat32).parsestr(payload[:MAX_TEXT])]
        except (ValueError, TypeError, LookupError):
            blocks = []
    out: list[tuple[str, str]] = []
    for block in blocks:
        # Each name once: `keys()` repeats a name per field, and asking for all its
        # values per repeat made 300 Return-Path fields 4,000 values (and token checks).
        for name in dict.fromkeys(n.lower() for n in block.keys()[:200]):
            out.extend((name, value) for value in header_values(block, name))
    return out


def text_of(part: Message) -> str:
    """The decoded text of a leaf part, cut at MAX_TEXT characters."""
    try:
        raw = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError, AssertionError):
        return ""
    if not isinstance(raw, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw[: MAX_TEXT * 4].decode(charset, errors="replace")[:MAX_TEXT]
    except (LookupError, ValueError):  # an unknown charset, or a NUL in its name
        return raw[: MAX_TEXT * 4].decode("latin-1")[:MAX_TEXT]


# Lone surrogates too: the parser and argv keep undecodable bytes as U+DC80..U+DCFF,
# which no UTF-8 database column, log line or terminal can take.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff<>]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_log(value: str, limit: int = 200) -> str:
    """A stranger's text made safe to log and store: control characters (CR, LF, ESC,
    NUL), lone surrogates and angle brackets escaped, cut at `limit` characters."""
    cut = value[:limit]
    safe = _UNSAFE.sub(_escape, cut)
    return safe + ("..." if len(value) > limit else "")
