"""A message with 8bit parts re-encoded 7bit, for a relay that does not take 8bit.

Digests go out with their text part as it is (Content-Transfer-Encoding 8bit: UTF-8,
lines within 998 octets), sent with `BODY=8BITMIME` (RFC 6152), which every common
relay (Postfix, Exim, the big providers) advertises. For one that does not, RFC 6152
asks the client to re-encode rather than send 8bit: each 8bit part becomes
quoted-printable (RFC 2045), the rest of the message byte for byte as it was. DKIM
signs the re-encoded message (RFC 6376 5.3: a signature must not be broken by a
conversion on the way), see `dkim.DkimSigner.sign`.

Only what our messages are needs handling: headers in ASCII (encoded words), CRLF
line ends, a single part or multipart ones (nested or not) whose 8bit content sits in
parts labelled 8bit. Anything else (non-ASCII headers, which need SMTPUTF8 anyway;
8bit bytes in a part labelled otherwise) gives None: it cannot be made 7bit here.
"""

from __future__ import annotations

import binascii
import re
from email.parser import BytesHeaderParser
from email.policy import compat32

# The header saying 8bit, on a line of its own (CRLF line ends: `$` would not do).
_CTE_8BIT = re.compile(rb"^(Content-Transfer-Encoding:[ \t]*)8bit[ \t]*(?=\r\n|\Z)", re.I | re.M)
_CRLF = b"\r\n"


def seven_bit_message(message: bytes) -> bytes | None:
    """`message` with every 8bit part quoted-printable encoded (and its header saying
    so); `message` itself when it is ASCII already; None when it cannot be made 7bit."""
    if message.isascii():
        return message
    return _entity(message)


def _entity(entity: bytes) -> bytes | None:
    """A header block, an empty line and a body (a whole message or one part)."""
    if entity.startswith(_CRLF):  # a part with no headers: text/plain, 7bit
        return None
    head, sep, body = entity.partition(_CRLF + _CRLF)
    if not sep or not head.isascii():
        return None
    headers = BytesHeaderParser(policy=compat32).parsebytes(head + sep)
    if headers.get_content_maintype() == "multipart":
        boundary = headers.get_boundary()
        converted = _multipart(body, boundary.encode("ascii")) if boundary else None
        label = b"7bit"  # what a multipart entity's label says of its parts
    elif _CTE_8BIT.search(head):
        converted, label = _quoted_printable(body), b"quoted-printable"
    else:
        return None  # 8bit bytes in a part that does not say it has them
    if converted is None:
        return None
    return _CTE_8BIT.sub(rb"\g<1>" + label, head) + sep + converted


def _multipart(body: bytes, boundary: bytes) -> bytes | None:
    """The body of a multipart entity with each part that is not ASCII converted.
    The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1)."""
    pieces = (_CRLF + body).split(_CRLF + b"--" + boundary)
    preamble, parts = pieces[0][2:], pieces[1:]
    if not preamble.isascii():
        return None
    out = [preamble]
    for piece in parts:
        if piece.startswith(b"--") or piece.isascii():  # the close delimiter, or 7bit
            if not piece.isascii():
                return None  # an epilogue with 8bit bytes
            out.append(piece)
            continue
        padding, sep, part = piece.partition(_CRLF)
        converted = _entity(part) if sep else None
        if converted is None:
            return None
        out.append(padding + sep + converted)
    return (_CRLF + b"--" + boundary).join(out)


def _quoted_printable(body: bytes) -> bytes:
    """`body` (CRLF lines) quoted-printable encoded, lines within 76 characters."""
    data = body.replace(_CRLF, b"\n")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", _CRLF)
