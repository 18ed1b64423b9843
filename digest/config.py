"""Settings, read once from the environment and an optional `.env` file.

Every key is a `DIGEST_*` variable documented in `config.example.env`. A bad value
raises `ConfigError` with one line that names the key and what it expected, so the CLI
can print it and exit 2 instead of failing deep inside a run.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import io
import ipaddress
import os
import re
import sys
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from digest.errors import ConfigError, InputError
from digest.states import SmtpSecurity

_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")  # ASCII digits only


def parse_hhmm(value: str) -> str:
    """Validate a `HH:MM` 24-hour time and return it unchanged."""
    if not _TIME_RE.match(value.strip()):
        raise ValueError(f"expected a time as HH:MM (00:00-23:59), got {value[:80]!r}")
    return value.strip()


@functools.cache
def canonical_timezones() -> tuple[str, ...]:
    """The zones to offer in a picker, sorted: the zones tzdata defines (its `Z`
    lines) and each country's zone in `zone.tab`, plus UTC, but none of the old names
    kept only as links (`Africa/Asmera`, `US/Eastern`). `zone.tab` brings back the
    merged zones people still look for (`Europe/Amsterdam` is a link since 2022).
    Every available name is still accepted when typed (`parse_timezone`)."""
    available = zoneinfo.available_timezones()
    folder = importlib.resources.files("tzdata") / "zoneinfo"
    defined = {
        line.split()[1]
        for line in (folder / "tzdata.zi").read_text(encoding="utf-8").splitlines()
        if line.startswith("Z ")
    }
    per_country = {
        line.split("\t")[2]
        for line in (folder / "zone.tab").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    names = {n for n in defined | per_country if "/" in n and not n.startswith("Etc/")}
    return tuple(sorted((names & available) | {"UTC"}))


def suggest_timezone(name: str) -> str | None:
    """The zone a typo most likely meant (`Europe/Berln` -> `Europe/Berlin`), or None."""
    zones = canonical_timezones()
    by_lower = {z.lower(): z for z in zones}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[close[0]] if close else None


@functools.cache
def iana_timezones() -> frozenset[str]:
    """Every name tzdata defines, aliases included, but not the files ZoneInfo would
    also open that are not zones people live in: `localtime` is the server's own zone
    (a link to /etc/localtime, different on every host), and `right/*`, `posix/*` and
    `posixrules` exist only where the system ships them."""
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules"})


def parse_timezone(value: str) -> str:
    """Validate an IANA time zone name such as `Europe/Berlin`; an old alias
    (`Africa/Asmera`) is accepted as typed. A typo gets a "did you mean"."""
    name = value.strip()
    problem = f"expected an IANA time zone such as Europe/Berlin, got {value[:80]!r}"
    # IANA names are short; a huge one would reach the file system as a path.
    if not name or len(name) > 64 or name.startswith("/") or ".." in name:
        raise ValueError(problem)
    try:
        ZoneInfo(name)
        if name not in iana_timezones():
            raise ValueError(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        hint = suggest_timezone(name)
        raise ValueError(problem + (f"; did you mean {hint}?" if hint else "")) from None
    return name


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def conv(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {lo} to {hi}, got {value!r}") from None
        if not lo <= number <= hi:
            raise ValueError(f"expected a whole number from {lo} to {hi}, got {value!r}")
        return number

    return conv


def _float(lo: float, hi: float) -> Callable[[str], float]:
    def conv(value: str) -> float:
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number from {lo} to {hi}, got {value!r}") from None
        if not lo <= number <= hi:
            raise ValueError(f"expected a number from {lo} to {hi}, got {value!r}")
        return number

    return conv


def _choice(*options: str) -> Callable[[str], str]:
    def conv(value: str) -> str:
        v = value.strip().lower()
        if v not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return v

    return conv


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _url(value: str) -> str:
    v = value.strip().rstrip("/")
    # The whole value: `http://exa mple.org` must not pass on its `http://exa` prefix.
    if not re.fullmatch(r"https?://[^\s/?#]+(?:[/?#]\S*)?", v):
        raise ValueError(f"expected an http(s) URL, got {value[:200]!r}")
    return v


def _address(value: str) -> str:
    v = value.strip()
    # Exactly one `local@domain` (a display name is fine): it becomes a From header
    # and an envelope sender, where a second address or a line break would be injected.
    pairs = getaddresses([v]) if v and "\r" not in v and "\n" not in v else []
    local, _, domain = pairs[0][1].rpartition("@") if len(pairs) == 1 else ("", "", "")
    if not local or not domain or any(c.isspace() for c in pairs[0][1]):
        raise ValueError(
            f"expected one email address such as 'Digest <digest@example.org>', got {value[:200]!r}"
        )
    return v


def _host(value: str) -> str:
    v = value.strip()
    if not v or len(v) > 253 or not re.fullmatch(r"[A-Za-z0-9._:\[\]-]+", v):
        raise ValueError(f"expected a host name or IP address, got {value[:200]!r}")
    return v


def _listen(value: str) -> str:
    """HOST:PORT for a separate listener (`[::1]:9108` for IPv6), or empty for none."""
    v = value.strip()
    if not v:
        return ""
    host, sep, port = v.rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:9108), got {value[:200]!r}")
    _host(host)
    _int(1, 65535)(port)
    return v


def _proxies(value: str) -> str:
    """Comma-separated IP addresses or networks (`10.0.0.0/8`), `*`, or empty. uvicorn
    takes anything and treats what is not an address as a name no peer has, so a
    typo would silently put every visitor behind the proxy's one address (and one
    rate limit): here it stops the program instead."""
    v = value.strip()
    if v == "*":
        return v
    items = [item.strip() for item in v.split(",") if item.strip()]
    for item in items:
        try:
            if "/" in item:
                ipaddress.ip_network(item, strict=False)
            else:
                ipaddress.ip_address(item)
        except ValueError:
            raise ValueError(
                f"expected comma-separated IP addresses or networks (127.0.0.1, "
                f"10.0.0.0/8) or *, got {item[:200]!r}"
            ) from None
    return ",".join(items)


def _mail_domain(value: str) -> str:
    """Empty, or a domain name: it becomes the part after @ of every envelope sender."""
    v = value.strip().lower().rstrip(".")
    if v and not re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}", v):
        raise ValueError(f"expected a domain name such as bounces.example.org, got {value[:200]!r}")
    return v


def _subject_template(value: str) -> str:
    """Checked here, with sample values, so a typo stops the program at start-up
    instead of failing every digest of a run."""
    v = _nonempty(value)
    try:
        v.format(count=3, topics="diffusion", date="24 Nov")
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"expected text with the fields {{count}}, {{topics}} and {{date}}, got {value[:200]!r} ({exc})"
        ) from None
    return v


def _nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a non-empty value")
    return value.strip()


EXAMPLE_SECRET_KEY = "change-me-please"
MIN_SECRET_KEY_LENGTH = 32
_MAKE_A_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _secret_key(value: str) -> str:
    """Every link and mail token is signed with this key: a short one ("x", a word)
    can be guessed offline from one signed link. Empty, or the example value the
    docs once showed, means the built-in example key, which only local trials may use
    (`check_secret`). The message never repeats the value: it is a secret."""
    v = value.strip()
    if not v or v == EXAMPLE_SECRET_KEY:
        return EXAMPLE_SECRET_KEY
    if len(v) < MIN_SECRET_KEY_LENGTH:
        raise ValueError(
            f"expected at least {MIN_SECRET_KEY_LENGTH} characters, got {len(v)}; "
            f"make one with: {_MAKE_A_KEY}"
        )
    return v


def _is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1; a name or address anyone else can reach is not."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_secret(settings: Settings, bind_host: str | None = None) -> bool:
    """Links are the only credentials: with the published example key anyone could
    sign a manage link for any address. Allowed only while links point at this
    machine and the server (if any, `bind_host`) listens only on it (local trials);
    refused once DIGEST_BASE_URL is a public site or the server listens on other
    interfaces. True when the example key is in (local) use, for a warning."""
    if settings.secret_key != EXAMPLE_SECRET_KEY:
        return False
    link_host = urlsplit(settings.base_url).hostname or ""
    if _is_loopback(link_host) and (bind_host is None or _is_loopback(bind_host)):
        return True
    where = (
        settings.base_url
        if not _is_loopback(link_host)
        else f"anyone who reaches {bind_host}, where the server listens"
    )
    raise InputError(
        f"DIGEST_SECRET_KEY is not set (or is the example value), so anyone could forge "
        f"manage and unsubscribe links for {where}. Set a long random value, e.g. the "
        f"output of: {_MAKE_A_KEY}"
    )


def check_smtp_login(settings: Settings) -> None:
    """A login over DIGEST_SMTP_SECURITY=none sends the password as readable base64
    to whoever sits on the path; aiosmtplib (like smtplib) sends it all the same when
    the relay offers AUTH without TLS. Refused unless the relay is on this machine
    (loopback: nothing crosses a network) or DIGEST_SMTP_ALLOW_PLAINTEXT_AUTH says
    the path is trusted (a private link, a tunnel)."""
    if (
        settings.transport != "smtp"
        or not settings.smtp_username
        or settings.smtp_security != SmtpSecurity.NONE
        or settings.smtp_allow_plaintext_auth
        or _is_loopback(settings.smtp_host)
    ):
        return
    raise ConfigError(
        f"DIGEST_SMTP_USERNAME is set but DIGEST_SMTP_SECURITY=none: the password would "
        f"cross the network to {settings.smtp_host} unencrypted; set DIGEST_SMTP_SECURITY="
        "starttls or ssl (or DIGEST_SMTP_ALLOW_PLAINTEXT_AUTH=true if that path is trusted)"
    )


def _database_url(value: str) -> str:
    v = value.strip()
    if not re.match(r"^[a-z][a-z0-9+]*://", v) or not v.isprintable():
        raise ValueError(
            f"expected a SQLAlchemy URL such as sqlite:///digest.db, got {value[:200]!r}"
        )
    return v


def _optional_path(value: str) -> Path | None:
    return Path(value).expanduser() if value.strip() else None


def _str(value: str) -> str:
    return value.strip()


def _lower(value: str) -> str:
    return value.strip().lower()


@dataclass(frozen=True)
class Settings:
    """All runtime settings. Build one with `load_settings()`; pass it down explicitly."""

    database_url: str = "sqlite:///digest.db"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: str = SmtpSecurity.NONE.value
    smtp_timeout: float = 30.0
    smtp_pool_size: int = 4
    smtp_allow_plaintext_auth: bool = False
    transport: str = "smtp"
    outbox_dir: Path | None = None
    sendmail_path: str = "/usr/sbin/sendmail"
    from_address: str = "Paper Digest <digest@localhost>"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = EXAMPLE_SECRET_KEY
    sources: str = "sample"
    templates_dir: Path | None = None
    send_at: str = "07:00"
    timezone: str = "UTC"
    max_papers: int = 20
    first_digest_days: int = 3
    send_every_minutes: int = 5
    fetch_every_minutes: int = 60
    log_format: str = "text"
    log_level: str = "info"
    contact_email: str = "digest@localhost"
    huggingface_url: str = "https://huggingface.co"
    arxiv_rss_url: str = "https://rss.arxiv.org/rss"
    arxiv_api_url: str = "http://export.arxiv.org/api/query"
    arxiv_min_interval: float = 3.0
    http_timeout: float = 20.0
    http_retries: int = 3
    http_backoff: float = 1.0
    fetch_deadline_seconds: float = 120.0
    max_entries_per_fetch: int = 5000
    max_feed_bytes: int = 32 * 1024 * 1024
    retry_base_seconds: float = 60.0
    retry_max_age_hours: float = 48.0
    max_bounces: int = 3
    rate_per_second: float = 0.0
    rate_per_hour: int = 0
    breaker_threshold: int = 20
    relay_down_wait_seconds: float = 20.0
    lease_seconds: float = 300.0
    run_retry_window_seconds: float = 300.0
    edition_chunk: int = 250
    keep_messages_days: int = 7  # 0: keep forever
    keep_events_days: int = 0  # 0: keep forever
    build_workers: int = 0  # 0: one per CPU
    dkim_key_file: Path | None = None
    dkim_selector: str = ""
    dkim_domain: str = ""
    bounce_domain: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    admin_token: str = ""
    metrics_listen: str = ""
    signup_limit_per_ip: int = 20
    mail_limit_per_address: int = 3
    preview_limit_per_ip: int = 60
    preview_queue: int = 8
    preview_timeout: float = 5.0
    http_header_timeout: float = 10.0
    http_body_timeout: float = 30.0
    trusted_proxies: str = "127.0.0.1"
    weight_title: float = 3.0
    weight_abstract: float = 1.0
    weight_author: float = 2.0
    weight_category: float = 1.0
    weight_keyword: float = 1.5
    weight_popularity: float = 1.0
    weight_recency: float = 0.5
    semantic: str = "auto"
    embed_threads: int = 1
    subject_template: str = "{count} new papers: {topics} - {date}"


# Environment key, Settings field, converter.
_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "DIGEST_DATABASE_URL": ("database_url", _database_url),
    "DIGEST_SMTP_HOST": ("smtp_host", _host),
    "DIGEST_SMTP_PORT": ("smtp_port", _int(1, 65535)),
    "DIGEST_SMTP_USERNAME": ("smtp_username", _str),
    "DIGEST_SMTP_PASSWORD": ("smtp_password", _str),
    "DIGEST_SMTP_SECURITY": ("smtp_security", _choice(*SmtpSecurity)),
    "DIGEST_SMTP_TIMEOUT": ("smtp_timeout", _float(0.1, 3600)),
    "DIGEST_SMTP_POOL_SIZE": ("smtp_pool_size", _int(1, 64)),
    "DIGEST_SMTP_ALLOW_PLAINTEXT_AUTH": ("smtp_allow_plaintext_auth", _bool),
    # The names are the transport registry's; `digest.startup` checks them.
    "DIGEST_TRANSPORT": ("transport", _lower),
    "DIGEST_OUTBOX_DIR": ("outbox_dir", _optional_path),
    "DIGEST_SENDMAIL_PATH": ("sendmail_path", _nonempty),
    "DIGEST_FROM": ("from_address", _address),
    "DIGEST_BASE_URL": ("base_url", _url),
    "DIGEST_SECRET_KEY": ("secret_key", _secret_key),
    # The kinds are the source registry's; `digest.startup` checks them.
    "DIGEST_SOURCES": ("sources", _str),
    "DIGEST_TEMPLATES_DIR": ("templates_dir", _optional_path),
    "DIGEST_SEND_AT": ("send_at", parse_hhmm),
    "DIGEST_TIMEZONE": ("timezone", parse_timezone),
    "DIGEST_MAX_PAPERS": ("max_papers", _int(1, 500)),
    "DIGEST_FIRST_DIGEST_DAYS": ("first_digest_days", _int(0, 365)),
    "DIGEST_SEND_EVERY_MINUTES": ("send_every_minutes", _int(1, 1440)),
    "DIGEST_FETCH_EVERY_MINUTES": ("fetch_every_minutes", _int(5, 1440)),
    "DIGEST_LOG_FORMAT": ("log_format", _choice("text", "json")),
    "DIGEST_LOG_LEVEL": ("log_level", _choice("debug", "info", "warning", "error")),
    "DIGEST_CONTACT_EMAIL": ("contact_email", _address),
    "DIGEST_HUGGINGFACE_URL": ("huggingface_url", _url),
    "DIGEST_ARXIV_RSS_URL": ("arxiv_rss_url", _url),
    "DIGEST_ARXIV_API_URL": ("arxiv_api_url", _url),
    "DIGEST_ARXIV_MIN_INTERVAL": ("arxiv_min_interval", _float(0, 3600)),
    "DIGEST_HTTP_TIMEOUT": ("http_timeout", _float(0.1, 600)),
    "DIGEST_HTTP_RETRIES": ("http_retries", _int(0, 20)),
    "DIGEST_HTTP_BACKOFF": ("http_backoff", _float(0, 600)),
    "DIGEST_FETCH_DEADLINE_SECONDS": ("fetch_deadline_seconds", _float(1, 86400)),
    "DIGEST_MAX_ENTRIES_PER_FETCH": ("max_entries_per_fetch", _int(1, 1_000_000)),
    "DIGEST_MAX_FEED_BYTES": ("max_feed_bytes", _int(1024, 1024 * 1024 * 1024)),
    "DIGEST_RETRY_BASE_SECONDS": ("retry_base_seconds", _float(0, 86400)),
    "DIGEST_RETRY_MAX_AGE_HOURS": ("retry_max_age_hours", _float(0, 24 * 30)),
    "DIGEST_MAX_BOUNCES": ("max_bounces", _int(1, 1000)),
    "DIGEST_RATE_PER_SECOND": ("rate_per_second", _float(0, 100000)),
    "DIGEST_RATE_PER_HOUR": ("rate_per_hour", _int(0, 100_000_000)),
    "DIGEST_BREAKER_THRESHOLD": ("breaker_threshold", _int(1, 100000)),
    "DIGEST_RELAY_DOWN_WAIT_SECONDS": ("relay_down_wait_seconds", _float(0, 3600)),
    "DIGEST_LEASE_SECONDS": ("lease_seconds", _float(1, 86400)),
    "DIGEST_RUN_RETRY_WINDOW_SECONDS": ("run_retry_window_seconds", _float(0, 86400)),
    "DIGEST_EDITION_CHUNK": ("edition_chunk", _int(1, 100_000)),
    "DIGEST_KEEP_MESSAGES_DAYS": ("keep_messages_days", _int(0, 36_500)),
    "DIGEST_KEEP_EVENTS_DAYS": ("keep_events_days", _int(0, 36_500)),
    "DIGEST_BUILD_WORKERS": ("build_workers", _int(0, 256)),
    "DIGEST_DKIM_KEY_FILE": ("dkim_key_file", _optional_path),
    "DIGEST_DKIM_SELECTOR": ("dkim_selector", _str),
    "DIGEST_DKIM_DOMAIN": ("dkim_domain", _str),
    "DIGEST_BOUNCE_DOMAIN": ("bounce_domain", _mail_domain),
    "DIGEST_HTTP_HOST": ("http_host", _host),
    "DIGEST_HTTP_PORT": ("http_port", _int(1, 65535)),
    "DIGEST_ADMIN_TOKEN": ("admin_token", _str),
    "DIGEST_METRICS_LISTEN": ("metrics_listen", _listen),
    "DIGEST_SIGNUP_LIMIT_PER_IP": ("signup_limit_per_ip", _int(1, 1_000_000)),
    "DIGEST_MAIL_LIMIT_PER_ADDRESS": ("mail_limit_per_address", _int(1, 1000)),
    "DIGEST_PREVIEW_LIMIT_PER_IP": ("preview_limit_per_ip", _int(1, 1_000_000)),
    "DIGEST_PREVIEW_QUEUE": ("preview_queue", _int(1, 1000)),
    "DIGEST_PREVIEW_TIMEOUT": ("preview_timeout", _float(0.1, 600)),
    "DIGEST_HTTP_HEADER_TIMEOUT": ("http_header_timeout", _float(0.1, 3600)),
    "DIGEST_HTTP_BODY_TIMEOUT": ("http_body_timeout", _float(0.1, 3600)),
    "DIGEST_TRUSTED_PROXIES": ("trusted_proxies", _proxies),
    "DIGEST_WEIGHT_TITLE": ("weight_title", _float(0, 1000)),
    "DIGEST_WEIGHT_ABSTRACT": ("weight_abstract", _float(0, 1000)),
    "DIGEST_WEIGHT_AUTHOR": ("weight_author", _float(0, 1000)),
    "DIGEST_WEIGHT_CATEGORY": ("weight_category", _float(0, 1000)),
    "DIGEST_WEIGHT_KEYWORD": ("weight_keyword", _float(0, 1000)),
    "DIGEST_WEIGHT_POPULARITY": ("weight_popularity", _float(0, 1000)),
    "DIGEST_WEIGHT_RECENCY": ("weight_recency", _float(0, 1000)),
    "DIGEST_SUBJECT_TEMPLATE": ("subject_template", _subject_template),
    "DIGEST_SEMANTIC": ("semantic", _choice("auto", "on", "off")),
    "DIGEST_EMBED_THREADS": ("embed_threads", _int(1, 64)),
}

ENV_KEYS = tuple(_KEYS)

# Names read elsewhere on purpose, so not a misspelling of a setting.
_OTHER_DIGEST_NAMES: frozenset[str] = frozenset()


def misspelt_keys(names: Iterable[str]) -> list[tuple[str, str | None]]:
    """Each `DIGEST_*` name that is no setting, with the setting it most likely
    meant (difflib), or None: a typo such as `DIGEST_SMPT_HOST` is otherwise ignored
    in silence and the default used."""
    found = []
    for name in sorted(set(names)):
        if not name.startswith("DIGEST_") or name in _KEYS or name in _OTHER_DIGEST_NAMES:
            continue
        close = difflib.get_close_matches(name, ENV_KEYS, n=1, cutoff=0.8)
        found.append((name, close[0] if close else None))
    return found


def warn_misspelt(names: Iterable[str], stream: TextIO | None = None) -> None:
    """One stderr line per unknown `DIGEST_*` name (the caller does this once)."""
    for name, meant in misspelt_keys(names):
        hint = f"did you mean {meant}?" if meant else "see config.example.env for the settings"
        (stream or sys.stderr).write(f"warning: {name} is not a digest setting; {hint}\n")


def read_env_file(env_file: Path | str) -> dict[str, str]:
    """The `KEY=value` pairs of a `.env` file ({} when there is none). python-dotenv
    skips a line it cannot parse with a logged warning, so a setting mistyped there
    (`DIGEST_FROM="Digest <d@x.org>` without its closing quote) would silently fall
    back to its default: here it stops the program, naming the file and the line."""
    path = Path(env_file)
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{env_file}: cannot read it as UTF-8 text ({exc})") from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.string.strip().splitlines()[0][:80]
            raise ConfigError(
                f"{env_file}, line {binding.original.line}: cannot read {line!r}; "
                "expected KEY=value (quote a value with spaces or #)"
            )
    values = dotenv_values(stream=io.StringIO(text))
    return {k: v for k, v in values.items() if v is not None}


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | str | None = ".env",
    checks: Mapping[str, Callable[[str], Any]] | None = None,
) -> Settings:
    """Build Settings from `.env` (if present) overlaid by the process environment.

    The environment wins over `.env`, as with every dotenv tool people know.
    `checks` replaces the converter of some keys: the keys whose valid values a stage
    registers (`DIGEST_SOURCES`, `DIGEST_TRANSPORT`) are checked by converters that
    `digest.startup` passes in, because this core module imports no stage. Their
    errors read like every other key's.
    """
    unknown = set(checks or ()) - set(_KEYS)
    if unknown:
        raise ValueError(f"checks for keys that do not exist: {sorted(unknown)}")
    merged: dict[str, str] = dict(read_env_file(env_file)) if env_file is not None else {}
    merged.update(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for key, (field_name, convert) in _KEYS.items():
        raw = merged.get(key)
        if raw is None:
            continue
        convert = (checks or {}).get(key, convert)
        try:
            values[field_name] = convert(raw)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    return Settings(**values)
