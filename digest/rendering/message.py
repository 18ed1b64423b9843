"""The MIME message: multipart/alternative with the text part first and the HTML part
last (the one clients prefer), and the headers bulk-mail rules ask for (RFC 8058
one-click unsubscribe, List-Id, Message-ID, Date).

Built as bytes from a per-settings skeleton instead of through `email.message`, which
is several times slower; `tests/rendering/test_rendering_mime.py` parses every shape back with
the `email` package to prove the bytes are what they should be.
"""

from __future__ import annotations

import email.utils
import re
import secrets
import time
from dataclasses import dataclass, field
from functools import lru_cache

from digest.config import Settings
from digest.errors import InputError
from digest.rendering.compose import RenderedDigest
from digest.rendering.encoding import fold, header_text, phrase, unstructured_header

_ADDR_SPEC_RE = re.compile(r"^[^\s<>()\[\],;:\"\\@]{1,64}@[A-Za-z0-9.\-\[\]:]{1,255}$")


@dataclass(frozen=True)
class Skeleton:
    """What every message from these settings shares."""

    from_header: str
    domain: str
    list_id: str
    mailto_unsubscribe: str  # without a token: for a message that names no subscriber
    mailto_local: str  # `digest` of digest@domain: the unsubscribe address is digest+...

    def mailto_for(self, token: str | None) -> str:
        """The List-Unsubscribe mailto: with the subscriber's signed token in the
        address and in the Subject (`digest inbound` reads either; Gmail's and Yahoo's
        buttons keep the Subject, a provider that strips `+...` still has it)."""
        if not token or not re.fullmatch(r"[0-9a-z-]{1,40}", token):
            return self.mailto_unsubscribe
        return (
            f"mailto:{self.mailto_local}+unsubscribe-{token}@{self.domain}"
            f"?subject=unsubscribe%20{token}"
        )


@lru_cache(maxsize=16)
def skeleton(from_address: str) -> Skeleton:
    value = header_text(from_address, 400)
    angle = re.fullmatch(r"(.*?)\s*<([^<>]+)>", value)
    if angle:  # `Name, with comma <a@b>` too, which strict parsing would reject
        name, addr = angle.group(1).strip().strip('"').replace('\\"', '"'), angle.group(2).strip()
    else:
        name, addr = email.utils.parseaddr(value)
    if not _ADDR_SPEC_RE.match(addr):
        raise InputError(f"DIGEST_FROM: not a usable sender address: {from_address!r}")
    local, domain = addr.rsplit("@", 1)
    domain = re.sub(r"[^A-Za-z0-9.\-]", "", domain) or "localhost"
    display = phrase(name)
    from_value = f"{display} <{addr}>" if display else addr
    mailto_local = local.split("+")[0]
    return Skeleton(
        from_header=f"From: {from_value}",
        domain=domain,
        list_id=f"List-Id: Paper digest <digest.{domain}>",
        mailto_unsubscribe=f"mailto:{mailto_local}+unsubscribe@{domain}?subject=unsubscribe",
        mailto_local=mailto_local,
    )


def recipient(address: str) -> str:
    """The To address, refused unless it is a plain addr-spec (no names, no lists)."""
    addr = address.strip()
    if not _ADDR_SPEC_RE.match(addr):
        raise InputError(f"not a deliverable address: {header_text(addr, 80)!r}")
    return addr


@dataclass
class OutgoingMessage:
    """A finished message: its bytes and the headers the outbox wants to record."""

    message_id: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def as_bytes(self) -> bytes:
        return self.data

    def __getitem__(self, name: str) -> str | None:
        return self.headers.get(name)


def _web_url(url: str) -> str | None:
    """The unsubscribe URL if it is a clean http(s) URL that can sit inside <...>."""
    if url.startswith(("https://", "http://")) and not re.search(r"[\s<>\x00-\x1f\x7f]", url):
        return url
    return None


@lru_cache(maxsize=2)
def _date_header(second: int) -> str:
    """The Date of a message built in this second (RFC 5322 date-time, GMT): one
    formatting per second, not per message."""
    return email.utils.formatdate(second, usegmt=True)


def _line_ended(body: bytes) -> bytes:
    """A body ends with CRLF; the CRLF before a boundary belongs to the boundary."""
    return body if body.endswith(b"\r\n") else body + b"\r\n"


def build_message(
    settings: Settings,
    to_addr: str,
    rendered: RenderedDigest,
    message_id: str | None = None,
    date: str | None = None,
) -> OutgoingMessage:
    """The bytes of one message; everything but the address and the Date/Message-ID
    comes from `rendered` (subject, links, encoded bodies)."""
    sk = skeleton(settings.from_address)
    to = recipient(to_addr)
    if message_id:
        mid = header_text(message_id, 250)
        if not re.fullmatch(r"<[^<>\s]+@[^<>\s]+>", mid):
            raise InputError(f"not a Message-ID: {mid!r}")
    else:  # well-formed: the skeleton's domain is only letters, digits, dots, hyphens
        mid = email.utils.make_msgid(domain=sk.domain)
    when = date or _date_header(int(time.time()))
    subject = rendered.subject
    links = rendered.links
    text_cte, text_body = rendered.text_body
    html_cte, html_body = rendered.html_body
    boundary = "=_digest_" + secrets.token_hex(12)
    lines = [
        sk.from_header,
        f"To: {to}",
        unstructured_header("Subject", subject),
        f"Date: {header_text(date, 60) if date else when}",
        f"Message-ID: {mid}",
        sk.list_id,
    ]
    unsubscribe = _web_url(links.get("unsubscribe", ""))
    if unsubscribe:
        lines.append(
            fold(
                "List-Unsubscribe",
                [f"<{unsubscribe}>", f"<{sk.mailto_for(links.get('mail_token'))}>"],
                ", ",
            )
        )
        if unsubscribe.startswith("https://"):
            # RFC 8058 one-click is defined for HTTPS URIs only; a plain-http base URL
            # (a local trial) still gets the link and the mailto, not the promise.
            lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="utf-8"',
        f"Content-Transfer-Encoding: {text_cte}",
        "",
    ]
    head = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    middle = (
        f"\r\n--{boundary}\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {html_cte}\r\n\r\n"
    ).encode("ascii")
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    data = b"".join((head, _line_ended(text_body), middle, _line_ended(html_body), tail))
    return OutgoingMessage(
        message_id=mid,
        data=data,
        headers={"Message-ID": mid, "Subject": header_text(subject), "To": to, "Date": when},
    )
