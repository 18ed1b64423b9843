"""SMTP transport through aiosmtplib: a pool of reused connections.

Each `send` borrows one connection, so the outbox gets N messages in flight by calling
`send` from N tasks. A connection the server closed while idle (421, idle timeout) is
noticed and replaced; a message that failed before the server could have accepted it
is tried once more at once on a fresh connection, because nothing was delivered yet.

DATA goes out without aiosmtplib's two regex passes over the message (line endings,
dot-stuffing), which were most of the CPU a 67 kB digest cost to send: our messages
are built with CRLF line ends, so `data_payload` only checks that and doubles leading
dots, with patterns the regex engine runs several times faster, giving the very bytes
aiosmtplib would have sent. Anything else (a bare CR or LF, no final CRLF) goes
through aiosmtplib's own path.

A message with 8bit content (a digest's text part) goes with `BODY=8BITMIME` (RFC
6152); to a relay that does not advertise 8BITMIME it goes re-encoded 7bit
(`downgrade.seven_bit_message`), as RFC 6152 asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import ssl
from email.utils import parseaddr

import aiosmtplib

from digest.config import Settings, check_smtp_login
from digest.delivery.base import SendResult
from digest.delivery.downgrade import seven_bit_message
from digest.states import SmtpSecurity

# Stages of one transaction; a failure before "data" cannot have delivered anything.
_BEFORE_DATA = ("mail", "rcpt")


def from_settings(settings: Settings) -> SmtpTransport:
    """`DIGEST_TRANSPORT=smtp` (the default): the DIGEST_SMTP_* relay."""
    return SmtpTransport(settings)


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        check_smtp_login(settings)  # never a password in the clear over a network
        self.settings = settings
        self.pool_size = settings.smtp_pool_size
        self.relay = f"{settings.smtp_host}:{settings.smtp_port}"  # for what the run says
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP | None] | None = None

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout,
            use_tls=s.smtp_security == SmtpSecurity.SSL,
            start_tls=s.smtp_security == SmtpSecurity.STARTTLS,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
        )

    async def open(self) -> None:
        """Make the pool; connections are opened on first use, so a server that is
        down at the start only costs the messages tried while it is down."""
        if self._idle is None:
            self._idle = asyncio.LifoQueue()
            for _ in range(self.pool_size):
                self._idle.put_nowait(None)

    async def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        await self.open()
        assert self._idle is not None
        client = await self._idle.get()
        try:
            client, result = await self._send_with(client, sender, recipient, message)
        finally:
            self._idle.put_nowait(client)
        return result

    async def _send_with(
        self, client: aiosmtplib.SMTP | None, sender: str, recipient: str, message: bytes
    ) -> tuple[aiosmtplib.SMTP | None, SendResult]:
        envelope_from = _envelope_address(sender)
        for try_again in (True, False):
            # `conn` is the connection this try uses; `client` what goes back to the pool.
            reused = client is not None and client.is_connected
            if client is not None and reused:
                conn = client
            else:
                _drop(client)
                conn = client = self._new_client()
                try:
                    await conn.connect()
                    await _greet(conn)
                except aiosmtplib.SMTPResponseException as exc:
                    # The relay refused us as a whole (greeting, STARTTLS, AUTH): not the
                    # recipient's fault, so it is retried, never counted as a bounce.
                    _drop(conn)
                    hint = (
                        _LOGIN_HINT if isinstance(exc, aiosmtplib.SMTPAuthenticationError) else ""
                    )
                    return None, SendResult(
                        False, f"connect: {exc.code} {exc.message}{hint}", relay_down=True
                    )
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    _drop(conn)
                    return None, SendResult(
                        False, f"connect: {_describe_connect(exc)}", relay_down=True
                    )
            stage = "mail"
            try:
                options, encoding, payload = _mail_options(conn, envelope_from, recipient, message)
                await _mail(conn, envelope_from, options, encoding)
                stage = "rcpt"
                await _rcpt(conn, recipient, encoding)
                stage = "data"
                response = await _data(conn, payload)
                return client, SendResult(True, f"{response.code} {response.message}")
            except aiosmtplib.SMTPNotSupported as exc:
                await _reset_envelope(conn)
                # an 8bit message this relay cannot take is the message's fault, not
                # the address's: not a bounce
                return client, SendResult(
                    False,
                    f"554 {exc}",
                    permanent=True,
                    message_refused=isinstance(exc, NotSevenBit),
                )
            except aiosmtplib.SMTPResponseException as exc:
                closing = exc.code == 421
                if closing:
                    _drop(conn)
                    client = None
                    if reused and try_again and stage == "mail":
                        continue  # the idle connection had been closed by the server
                else:
                    await _reset_envelope(conn)
                # 5xx to MAIL FROM is about us (sender, relay policy), not the recipient;
                # so is a refusal to relay at all, whatever the address ("554 5.7.1
                # Relay access denied" when the login is missing): never a bounce.
                permanent = exc.code >= 500 and stage != "mail" and not _refuses_us(exc)
                # After the data, an enhanced code of class 5.3 (too big), 5.6 (content)
                # or 5.7 (policy, spam) refuses this message, not the address: the same
                # digest refused for everyone must not suspend everyone.
                refused = permanent and stage == "data" and _ABOUT_MESSAGE.match(exc.message)
                return client, SendResult(
                    False, f"{exc.code} {exc.message}", permanent, message_refused=bool(refused)
                )
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                _drop(conn)
                client = None
                if reused and try_again and stage in _BEFORE_DATA and not _is_timeout(exc):
                    continue
                return None, SendResult(False, f"{stage}: {_describe(exc)}")
        return client, SendResult(False, "connection lost twice")  # pragma: no cover

    async def close(self) -> None:
        if self._idle is None:
            return
        clients = []
        while not self._idle.empty():
            clients.append(self._idle.get_nowait())
        self._idle = None
        await asyncio.gather(*(self._quit(c) for c in clients if c is not None))

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await asyncio.wait_for(client.quit(), timeout=self.settings.smtp_timeout)
        _drop(client)


# An address with nothing for parseaddr to take away (no name, comment or quotes).
_BARE_ADDRESS = re.compile(r"[^\s<>()\[\]\\\",;:@]+@[^\s<>()\[\]\\\",;:@]+")


def _envelope_address(sender: str) -> str:
    """`Name <addr>` -> `addr` (the From header's address is the envelope sender). A
    bare address (every VERP sender is a new one) is taken as it is, unparsed."""
    if _BARE_ADDRESS.fullmatch(sender):
        return sender
    return _parsed_address(sender)


@functools.lru_cache(maxsize=16)
def _parsed_address(sender: str) -> str:
    return parseaddr(sender)[1] or sender


# A CR not followed by LF, an LF not preceded by CR, an LF before a ".": each starts
# with a literal, so the regex engine scans for it in C and tries the rest only at
# line ends (a 67 kB digest: ~80 us CPU here, ~580 us in aiosmtplib's two passes).
_BARE_CR = re.compile(rb"\r(?!\n)")
_BARE_LF = re.compile(rb"\n(?<!\r\n)")
_DOT_LINE = re.compile(rb"\n(?=\.)")


def data_payload(message: bytes) -> bytes | None:
    """What aiosmtplib's DATA sends for `message` (line ends made CRLF, lines starting
    with "." doubled, then the final "."), or None unless every line end of `message`
    is already CRLF, the last one included (aiosmtplib then sends it itself)."""
    if not message.endswith(b"\r\n") or _BARE_CR.search(message) or _BARE_LF.search(message):
        return None
    if message.startswith(b"."):
        message = b"." + message
    return _DOT_LINE.sub(b"\n.", message) + b".\r\n"


async def _data(client: aiosmtplib.SMTP, message: bytes) -> aiosmtplib.SMTPResponse:
    """`client.data(message)`, the message's payload made by `data_payload`; errors
    as aiosmtplib gives them (SMTPDataError for a reply other than 354, then 250; the
    connection closed on a timeout or a disconnect)."""
    payload = data_payload(message)
    if payload is None:
        return await client.data(message)
    # execute_command closes the connection on a timeout, a disconnect and a 421.
    start = await client.execute_command(b"DATA")
    if start.code != 354:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    try:
        protocol.write(payload)
        reply = await protocol.read_response(timeout=client.timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()
        raise
    if reply.code != 250:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)
    return reply


# aiosmtplib's mail() and rcpt() parse each address again with email.utils, a tenth
# of the CPU one message costs; ours were checked when stored (normalise_email, the
# From setting), and execute_command still refuses CR, LF and NUL in a command.
async def _mail(client: aiosmtplib.SMTP, sender: str, options: list[str], encoding: str) -> None:
    extra = [o.encode("ascii") for o in options]
    reply = await client.execute_command(b"MAIL", b"FROM:<%s>" % sender.encode(encoding), *extra)
    if reply.code != 250:
        raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)


async def _rcpt(client: aiosmtplib.SMTP, recipient: str, encoding: str) -> None:
    reply = await client.execute_command(b"RCPT", b"TO:<%s>" % recipient.encode(encoding))
    if reply.code not in (250, 251):
        raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)


class NotSevenBit(aiosmtplib.SMTPNotSupported):
    """A message with 8bit content that cannot be made 7bit, for a relay without
    8BITMIME."""


def _mail_options(
    client: aiosmtplib.SMTP, sender: str, recipient: str, message: bytes
) -> tuple[list[str], str, bytes]:
    """(MAIL FROM options, the addresses' encoding, the message to send): SIZE when
    offered; BODY=8BITMIME for a message with 8bit content, or the message re-encoded
    7bit when the relay does not take 8BITMIME; SMTPUTF8 when an address needs it
    (else the addresses go as ASCII)."""
    options: list[str] = []
    encoding = "ascii"
    if not message.isascii():
        if client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        else:
            seven = seven_bit_message(message)
            if seven is None:
                raise NotSevenBit(
                    "the relay does not take 8bit messages (no 8BITMIME) "
                    "and this one cannot be re-encoded 7bit"
                )
            message = seven
    if client.supports_extension("size"):
        options.append(f"SIZE={len(message)}")
    if not (sender.isascii() and recipient.isascii()):
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("the server does not take UTF-8 addresses")
        options.append("SMTPUTF8")
        encoding = "utf-8"
    return options, encoding, message


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO (HELO for an old server) now, so the extensions (SIZE, SMTPUTF8) are known
    before the first MAIL FROM."""
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()


async def _reset_envelope(client: aiosmtplib.SMTP) -> None:
    """RSET after a refusal so the connection can carry the next message."""
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        await client.rset()


def _drop(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        # Closing a broken connection may fail in any way; it is gone either way.
        with contextlib.suppress(Exception):
            client.close()


# Replies that refuse the sender (no login, relaying denied), not the recipient: 530
# and 535 (authentication), 5.7.0 and 5.7.8 enhanced codes, or Postfix's and Exim's
# words for an open-relay refusal.
_REFUSES_US = re.compile(
    r"^5\.7\.[08]\b|relay(?:ing)?\s+(?:access\s+)?(?:denied|not\s+permitted|prohibited)"
    r"|authentication\s+required",
    re.IGNORECASE,
)


_ABOUT_MESSAGE = re.compile(r"5\.[367]\.\d{1,3}\b")


def _refuses_us(exc: aiosmtplib.SMTPResponseException) -> bool:
    """Whether a 5xx reply is the relay refusing us (our login, our sender), which
    would otherwise count a bounce on every subscriber the run reaches."""
    return exc.code in (530, 535) or bool(_REFUSES_US.search(exc.message))


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError | aiosmtplib.SMTPTimeoutError)


_LOGIN_HINT = " (the relay refused the login: check DIGEST_SMTP_USERNAME and DIGEST_SMTP_PASSWORD)"
# aiosmtplib's words when the relay lacks what the settings require -> what to check.
_MISSING_EXTENSION = {
    "STARTTLS extension not supported": (
        "the relay offers no STARTTLS (DIGEST_SMTP_SECURITY=starttls): "
        "nothing is sent unencrypted; use ssl if it takes TLS from the start"
    ),
    "AUTH extension is not supported": (
        "the relay offers no login (DIGEST_SMTP_USERNAME is set): "
        "many offer it only over TLS, see DIGEST_SMTP_SECURITY"
    ),
}


def _describe_connect(exc: BaseException) -> str:
    """`Connection refused`, not aiosmtplib's sentence with the address in it twice:
    the system's words for the error under the exception, when there is one; for a
    relay without STARTTLS or AUTH, the setting that asked for it."""
    for words, meaning in _MISSING_EXTENSION.items():
        if words in str(exc):
            return meaning
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            # An SSLError's errno is OpenSSL's (1 reads "Operation not permitted").
            return _describe_tls(seen)
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return _describe(exc)


def _describe_tls(exc: ssl.SSLError) -> str:
    """`TLS: certificate verify failed: self-signed certificate`, plus what to check
    when the relay does not speak TLS on that port at all."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = f"certificate verify failed: {exc.verify_message}"
    else:
        reason = (exc.reason or str(exc)).replace("_", " ").lower()
    hint = ""
    if "wrong version number" in reason or "record layer failure" in reason:
        hint = " (no TLS on this port: DIGEST_SMTP_SECURITY=ssl needs a port such as 465)"
    return f"TLS: {reason}{hint}"


def _describe(exc: BaseException) -> str:
    kind = "timeout" if _is_timeout(exc) else type(exc).__name__
    text = str(exc).strip()
    return f"{kind}: {text}" if text else kind
