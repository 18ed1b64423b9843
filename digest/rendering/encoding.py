"""Bodies and header values encoded for the wire, with no help from `email.message`
(which is correct but builds a whole object tree per message; see bench/render.py).

The text part goes as it is (`eight_bit`: UTF-8, CRLF line ends, lines within 998
octets), labelled 8bit, or 7bit when it is ASCII; the SMTP transport re-encodes it
for a relay that does not take 8BITMIME (`digest.delivery.downgrade`). The HTML part
goes 7bit with character references (`seven_bit`). What neither can carry is
quoted-printable or base64, whichever is shorter (`encode_body`). Header values are stripped of every control character
first, so no input can start a header of its own, then sent as ASCII or as RFC 2047
encoded words, folded.
"""

from __future__ import annotations

import base64
import binascii
import re

_CTL_RE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
_WORD_BYTES = 45  # 60 base64 characters; with =?utf-8?b?...?= a line stays < 78


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def quoted_printable(text: str) -> bytes:
    data = normalise_newlines(text).encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


def base64_body(text: str) -> bytes:
    data = normalise_newlines(text).encode("utf-8")
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def encode_body(text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body): QP for mostly-ASCII text, base64
    when QP would be longer (text in scripts other than Latin)."""
    qp = quoted_printable(text)
    if len(qp) <= len(text) * 1.2 + 64:
        return "quoted-printable", qp
    b64 = base64_body(text)
    return ("base64", b64) if len(b64) < len(qp) else ("quoted-printable", qp)


# RFC 5322 2.1.1: a line is at most 998 octets without its CRLF.
LINE_LIMIT = 998


def eight_bit(text: str) -> tuple[str, bytes] | None:
    """(Content-Transfer-Encoding, body) for `text` sent as it is: UTF-8 with CRLF
    line ends, "7bit" when it is ASCII, else "8bit" (RFC 6152: the transport sends it
    with BODY=8BITMIME, or re-encodes it for a relay without). No encoding pass, and
    no larger than quoted-printable or base64 would make it. None when a line passes
    998 octets or there is a NUL or a bare CR, which neither may carry (RFC 2045 2.7,
    2.8): then the text is encoded (`encode_body`)."""
    data = text.encode("utf-8")
    if b"\r" in data or b"\x00" in data or _has_long_line(data):
        return None
    return ("7bit" if len(data) == len(text) else "8bit"), data.replace(b"\n", b"\r\n")


# Where character references are not decoded: raw-text elements and comments. A
# non-ASCII character there cannot be sent as `&#...;` (nor a marker of a pattern be
# filled with one).
_RAW_RE = re.compile(
    r"<(style|script|xmp|iframe|noembed|noframes|noscript|plaintext)\b.*?(?:</\1\s*>|\Z)"
    r"|<!--.*?(?:-->|\Z)",
    re.IGNORECASE | re.DOTALL,
)


_RAW_BYTES_RE = re.compile(_RAW_RE.pattern.encode(), _RAW_RE.flags & ~re.UNICODE)


def references_hold(html: str) -> bool:
    """Whether every non-ASCII character of `html` (a page or card, or a pattern of
    one with NUL-delimited markers) may be written as a numeric character reference:
    none sits in a raw-text element (<style>, <script>, ...) or a comment, where a
    reference is not decoded. Checked once per template pattern, not per message."""
    for m in _RAW_RE.finditer(html):
        raw = m.group()
        if not raw.isascii() or "\x00" in raw:
            return False
    return True


def seven_bit(html: str) -> bytes | None:
    """`html` as a 7bit body: non-ASCII as numeric character references (the caller
    knows they are decoded where they stand: `references_hold`), CRLF line ends.
    None when 7bit cannot carry it or would be the longer encoding: a line over 998
    octets, a NUL or a bare CR, or text mostly outside ASCII (a script other than
    Latin, where each character would take 6-8 bytes; base64 takes ~1.8)."""
    if html.isascii():
        data = html.encode("ascii")
    else:
        data = html.encode("ascii", "xmlcharrefreplace")
        if len(data) > len(html) * 1.2 + 64:
            return None
    if b"\r" in data or b"\x00" in data:
        return None
    broken = _lines_broken(data)  # `data` itself when no line is long
    if broken is None or (broken is not data and _has_long_line(broken)):
        return None
    return broken.replace(b"\n", b"\r\n")


def _lines_broken(data: bytes) -> bytes | None:
    """`data` with each line over LINE_LIMIT `_broken`; None when such a line is in a
    raw-text element or a comment, where a line break could change what it says (a
    string in a script). Only the long lines are cut out and measured against the
    raw regions, which are looked for up to the last of them: a page with a few
    long lines (a summary dense with highlights) is not split into its hundreds."""
    lines = _long_lines(data)
    if not lines:
        return data
    # a region starting before the end of the last long line starts there in the
    # whole page too (its end may be cut to that end, still past the line's start)
    raw = [m.span() for m in _RAW_BYTES_RE.finditer(data, 0, lines[-1][1])]
    out: list[bytes] = []
    pos = 0
    for start, end in lines:
        if any(a < end and start < b for a, b in raw):
            return None
        out += (data[pos:start], _broken(data[start:end]))
        pos = end
    out.append(data[pos:])
    return b"".join(out)


def _long_lines(data: bytes, first_only: bool = False) -> list[tuple[int, int]]:
    """(start, end) of each line of `data` over LINE_LIMIT, in order (only the first
    with `first_only`). Such a line holds a whole window [k * 499, k * 499 + 499)
    with no line break, so only windows are searched (a `find` each, which meets a
    break within a line's length) and a line is measured only around a window
    without one: ~4x faster than splitting a page into its lines, which every
    message would pay."""
    found: list[tuple[int, int]] = []
    size = len(data)
    if size <= LINE_LIMIT:
        return found
    find = data.find
    past = 0  # the end of the last line found: its windows are not looked at again
    for start in range(0, size - _WINDOW + 1, _WINDOW):
        if start >= past and find(b"\n", start, start + _WINDOW) < 0:
            line_start = data.rfind(b"\n", 0, start) + 1
            end = find(b"\n", start)
            line_end = size if end < 0 else end
            if line_end - line_start > LINE_LIMIT:
                found.append((line_start, line_end))
                if first_only:
                    break
                past = line_end
    return found


_WINDOW = LINE_LIMIT // 2


def _has_long_line(data: bytes) -> bool:
    """Whether a line of `data` passes LINE_LIMIT."""
    return bool(_long_lines(data, first_only=True))


# A start tag as the HTML tokenizer reads one (name, attributes with quoted, unquoted
# or no values), and one attribute of it with the whitespace before it.
_SPACE = rb"[\t\f\r ]"
_ATTRIBUTE = (
    rb"([^\t\n\f\r />\"'=<][^\t\n\f\r />=\"'<]*"
    + rb"(?:" + _SPACE + rb"*=" + _SPACE + rb"*(?:\"[^\"]*\"|'[^']*'|[^\t\n\f\r >\"'=<`]+))?)"
)  # fmt: skip
_TAG_RE = re.compile(
    rb"<[A-Za-z][^\t\n\f\r />]*(?:" + _SPACE + rb"+" + _ATTRIBUTE + rb")*" + _SPACE + rb"*/?>"
)
_ATTRIBUTE_RE = re.compile(_SPACE + rb"+" + _ATTRIBUTE)


def _broken(line: bytes) -> bytes:
    """A long line with a line break in place of the space before each attribute of
    its tags (`<mark\\nclass="hl"\\nstyle="...">`), where the tokenizer reads a line
    break as the space it replaces: the document is the same, its lines shorter (a
    summary with a dozen marked words, each with its inline style, passes 998)."""
    return _TAG_RE.sub(lambda tag: _ATTRIBUTE_RE.sub(rb"\n\1", tag.group()), line)


def header_text(value: str, limit: int = 900) -> str:
    """A header value as one safe line of text: control characters (CR, LF and the
    rest) become spaces, runs of space one space, and the length is bounded."""
    return " ".join(_CTL_RE.sub(" ", value[: limit * 2]).split())[:limit]


def fold(name: str, words: list[str], sep: str = " ") -> str:
    """`Name: w1 w2 ...` folded before a word when a line would pass 78 characters."""
    lines = [f"{name}:"]
    for i, word in enumerate(words):
        piece = (sep if i else "") + word
        if i and len(lines[-1]) + len(piece) > 78:
            lines[-1] += sep.rstrip()
            lines.append(" " + word)
        else:
            lines[-1] += piece if i else " " + word
    return "\r\n".join(lines)


def encoded_words(value: str) -> list[str]:
    """RFC 2047 `=?utf-8?b?...?=` words, each under 45 bytes, never splitting a
    character."""
    words = []
    chunk = b""
    for ch in value:
        b = ch.encode("utf-8")
        if len(chunk) + len(b) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += b
    if chunk:
        words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words]


def unstructured_header(name: str, value: str) -> str:
    """`Subject` and the like: ASCII folded at spaces, anything else encoded words."""
    text = header_text(value)
    if text.isascii() and "=?" not in text and all(len(w) < 70 for w in text.split()):
        return fold(name, text.split(" ") if text else [""])
    return fold(name, encoded_words(text))


def phrase(value: str) -> str:
    """A display name for an address header, quoted or encoded as needed."""
    text = header_text(value, 200)
    if not text:
        return ""
    if not text.isascii():
        return " ".join(encoded_words(text))
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
