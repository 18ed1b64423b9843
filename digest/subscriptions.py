"""Creating and changing subscriptions, with every field validated in one place.

The CLI (`digest subscribe`, `digest set`) and the web sign-up both go through here,
so an address, a profile or a schedule is checked the same way wherever it comes from,
and nothing is written when any field is bad.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from digest import store
from digest.config import Settings, parse_hhmm, parse_timezone
from digest.errors import InputError, QueryError
from digest.matching import Interest, KeywordQuery
from digest.matching.interest import MAX_EXAMPLES, MAX_INTEREST_CHARS
from digest.matching.lexical import query_terms
from digest.models import Subscriber, utcnow
from digest.records import canonical_arxiv_id
from digest.states import FREQUENCIES, WEEKDAYS, Frequency, SubscriberStatus, Weekday
from digest.store import Engine

MAX_KEYWORDS_CHARS = 4000


@dataclass
class ScheduleRequest:
    """A schedule as a subscriber asked for it, checked (see `check_schedule`); the
    fields a `Subscriber` row stores. `digest.schedule` works out when it is due."""

    timezone: str
    send_at: str
    frequency: str = Frequency.DAILY
    weekday: str | None = None


def check_keywords(keywords: str, optional: bool = False) -> str:
    """The profile as stored: stripped, and compiled once so a bad one fails here.
    `optional`: an empty query is allowed (the profile has an interest or examples)."""
    text = (keywords or "").strip()
    if not text:
        if optional:
            return ""
        raise InputError("the profile is empty: give at least one keyword")
    for position, char in enumerate(text):
        # Line breaks and tabs are spaces to the query language; any other control
        # character (an ESC from a pasted terminal, a NUL) is no text a paper holds,
        # and would reach an operator's terminal in `digest subscribers`.
        if unicodedata.category(char) == "Cc" and char not in "\t\r\n":
            raise QueryError(
                f"the profile holds a control character (U+{ord(char):04X}); remove it",
                position,
            )
    KeywordQuery.parse(text)  # strict: a QueryError names the position
    return text


def check_interest(text: str | None) -> str | None:
    """A plain-English interest as stored: whitespace (newlines too) folded to single
    spaces; None when empty. Refused when too long or with nothing to match on."""
    if text is None:
        return None
    if len(text) > MAX_INTEREST_CHARS * 4:
        raise InputError(f"--interest: at most {MAX_INTEREST_CHARS} characters, got {len(text)}")
    clean = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if not clean:
        return None
    if len(clean) > MAX_INTEREST_CHARS:
        raise InputError(f"--interest: at most {MAX_INTEREST_CHARS} characters, got {len(clean)}")
    if not query_terms(Interest.of(clean).topic):
        raise InputError(
            "--interest: say what you are interested in, in a few words "
            f"(nothing to match on in {clean[:60]!r})"
        )
    return clean


def check_likes(value: str | Sequence[str] | None) -> list[str]:
    """arXiv ids of example papers, checked and normalised (version dropped, order
    kept, repeats dropped). Papers not stored yet are kept: used when they arrive."""
    if value is None:
        return []
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        # A control character (a CR, say) inside an item is refused, not cut around:
        # "arXiv:2401.01234\r\nX" is no id, though an id can be found in it.
        text = str(item).strip()
        raw = canonical_arxiv_id(text) if text.isprintable() else None  # as sources key
        if raw is None:
            shown = str(item)[:60]
            raise InputError(
                f"--like: {shown!r} is not an arXiv id (like 2401.01234 or hep-th/9901001)"
            )
        if raw not in out:
            out.append(raw)
    if len(out) > MAX_EXAMPLES:
        raise InputError(f"--like: at most {MAX_EXAMPLES} example papers, got {len(out)}")
    return out


def check_profile(
    keywords: str | None, interest: str | None, likes: list[str], strict: bool = True
) -> str:
    """The keywords as stored, once the profile as a whole has something to match:
    keywords, an interest, or example papers (any of them, or several). `strict`
    False: keywords already stored are kept as they are (read leniently)."""
    if strict:
        stored = check_keywords(keywords or "", optional=bool(interest or likes))
    else:
        stored = (keywords or "").strip()
    if not stored and not interest and not likes:
        raise InputError(
            "the profile is empty: give keywords, an interest (--interest) or example "
            "papers (--like)"
        )
    return stored


def check_schedule(
    settings: Settings,
    timezone: str | None = None,
    send_at: str | None = None,
    frequency: str | None = None,
    weekday: str | None = None,
) -> ScheduleRequest:
    for flag, typed in (("--timezone", timezone), ("--send-at", send_at)):
        if typed and _has_control(typed.strip()):
            raise InputError(f"{flag}: control characters (such as a line break) in {typed[:80]!r}")
    try:
        tz = parse_timezone(timezone) if timezone else settings.timezone
    except ValueError as exc:
        raise InputError(f"--timezone: {exc}") from None
    try:
        at = parse_hhmm(send_at) if send_at else settings.send_at
    except ValueError as exc:
        raise InputError(f"--send-at: {exc}") from None
    # A weekday alone means weekly: `--weekday fri` should not be silently dropped.
    freq = (frequency or (Frequency.WEEKLY if weekday else Frequency.DAILY)).strip().lower()
    if freq not in FREQUENCIES:
        raise InputError(
            f"--frequency: expected one of {', '.join(FREQUENCIES)}, got {frequency!r}"
        )
    day = weekday.strip().lower()[:3] if weekday else None
    if day is not None and day not in WEEKDAYS:
        raise InputError(f"--weekday: expected one of {', '.join(WEEKDAYS)}, got {weekday!r}")
    if day is not None and freq != Frequency.WEEKLY:
        raise InputError(f"--weekday: only applies to --frequency weekly, not {freq}")
    if freq == Frequency.WEEKLY and day is None:
        day = Weekday.MON
    if freq != Frequency.WEEKLY:
        day = None
    return ScheduleRequest(tz, at, freq, day)


def _has_control(text: str) -> bool:
    """Whether `text` holds a control character (CR, LF, NUL, ...): never part of a
    time or a zone name, and a sign of a forged form (a header-injection attempt)."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def check_max_papers(value: int | None, settings: Settings) -> int:
    if value is None:
        return settings.max_papers
    if not 1 <= int(value) <= 500:
        raise InputError(f"--max-papers: expected a whole number from 1 to 500, got {value!r}")
    return int(value)


def check_min_score(value: float | None) -> float | None:
    """A finite, non-negative floor: `nan` or `inf` would be stored and then printed as
    invalid JSON by `digest subscribers --json`."""
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"--min-score: expected a number of 0 or more, got {value!r}")
    return float(value)


def new_subscriber(
    settings: Settings,
    email: str,
    keywords: str | None,
    *,
    interest: str | None = None,
    likes: str | Sequence[str] | None = None,
    status: str = SubscriberStatus.ACTIVE,
    max_papers: int | None = None,
    min_score: float | None = None,
    timezone: str | None = None,
    send_at: str | None = None,
    frequency: str | None = None,
    weekday: str | None = None,
    notify_empty: bool = False,
) -> Subscriber:
    """A validated, unsaved Subscriber; raises InputError naming the bad field."""
    address = store.normalise_email(email)
    wants = check_interest(interest)
    examples = check_likes(likes)
    profile = check_profile(keywords, wants, examples)
    schedule = check_schedule(settings, timezone, send_at, frequency, weekday)
    now = utcnow()
    return Subscriber(
        email=address,
        keywords=profile,
        interest=wants,
        likes=examples,
        status=status,
        max_papers=check_max_papers(max_papers, settings),
        min_score=check_min_score(min_score),
        timezone=schedule.timezone,
        send_at=schedule.send_at,
        frequency=schedule.frequency,
        weekday=schedule.weekday,
        notify_empty=notify_empty,
        created_at=now,
        confirmed_at=now if status == SubscriberStatus.ACTIVE else None,
    )


def subscribe(
    engine: Engine, settings: Settings, email: str, keywords: str | None, **fields: Any
) -> Subscriber:
    """Add an active subscriber (validated) and embed their interest once."""
    sub = add(engine, new_subscriber(settings, email, keywords, **fields))
    if sub.interest:  # embedding (numpy, the model) only for an interest
        from digest import semantic

        semantic.save_profile_vector(engine, settings, sub)
    return sub


def change(engine: Engine, settings: Settings, email: str, **fields: Any) -> Subscriber:
    """Change some fields of an existing subscription; only given (non-None) fields."""
    address = store.normalise_email(email)
    current = store.get_subscriber(engine, address)
    if current is None:
        raise InputError(f"no subscriber with address {address}")
    changes: dict[str, Any] = {}
    profile_given = any(fields.get(k) is not None for k in ("keywords", "interest", "likes"))
    if profile_given:
        # "" clears a part; the profile as a whole must still match something.
        interest = (
            check_interest(fields["interest"])
            if fields.get("interest") is not None
            else current.interest
        )
        likes = check_likes(fields["likes"]) if fields.get("likes") is not None else current.likes
        keywords = fields["keywords"] if fields.get("keywords") is not None else current.keywords
        changes.update(
            keywords=check_profile(
                keywords, interest, list(likes or []), strict=fields.get("keywords") is not None
            ),
            interest=interest,
            likes=list(likes or []),
        )
    if any(fields.get(k) is not None for k in ("timezone", "send_at", "frequency", "weekday")):
        freq = fields.get("frequency") or (
            Frequency.WEEKLY if fields.get("weekday") else current.frequency
        )
        keep_day = freq.strip().lower() == Frequency.WEEKLY
        sched = check_schedule(
            settings,
            fields.get("timezone") or current.timezone,
            fields.get("send_at") or current.send_at,
            freq,
            fields.get("weekday") or (current.weekday if keep_day else None),
        )
        changes.update(
            timezone=sched.timezone,
            send_at=sched.send_at,
            frequency=sched.frequency,
            weekday=sched.weekday,
        )
    if fields.get("max_papers") is not None:
        changes["max_papers"] = check_max_papers(fields["max_papers"], settings)
    if fields.get("min_score") is not None:
        changes["min_score"] = check_min_score(fields["min_score"])
    if fields.get("notify_empty") is not None:
        changes["notify_empty"] = fields["notify_empty"]
    sub = store.update_subscriber(engine, address, **changes)
    # Embedding (numpy, the model) only when there is an interest to embed or forget:
    # new keywords alone change no vector.
    if "interest" in changes and (sub.interest or current.interest):
        from digest import semantic

        semantic.save_profile_vector(engine, settings, sub)
    return sub


# ------------------------------------------------------------ operator commands


@dataclass
class Outcome:
    """What an operator command did to one address: `changed` (it did something),
    `refused` (it would not: `message` says why and what to do), or neither (the
    address was already in the asked-for state)."""

    email: str
    status: str | None
    message: str
    changed: bool = False
    refused: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "status": self.status,
            "changed": self.changed,
            "refused": self.refused,
            "message": self.message,
        }


def status_note(sub: Subscriber) -> str | None:
    """Why a stored subscription gets no digests, and what brings it back; None when
    it is active. `subscribe` and `set` say it, so they never pretend all is well."""
    fixes = {
        SubscriberStatus.UNSUBSCRIBED: (
            f"it unsubscribed; `digest reactivate {sub.email} --unsubscribed-ok` brings it "
            "back, only with the subscriber's consent"
        ),
        SubscriberStatus.SUSPENDED: (
            f"it was suspended after {sub.bounces} bounce(s); `digest reactivate "
            f"{sub.email}` brings it back and clears the bounces"
        ),
        SubscriberStatus.PAUSED: f"it is paused; `digest resume {sub.email}` restarts it",
        SubscriberStatus.PENDING: "it has not confirmed its sign-up (the emailed link) yet",
    }
    fix = fixes.get(SubscriberStatus(sub.status)) if sub.status in set(SubscriberStatus) else None
    return f"status {sub.status}: no digests are sent; {fix}" if fix else None


def add(engine: Engine, sub: Subscriber) -> Subscriber:
    """Store a new subscriber (`digest subscribe`); a known address is refused with its
    status and the command that would bring it back, not a bare "already subscribed"."""
    known = store.get_subscriber(engine, sub.email)
    if known is not None:
        note = status_note(known)
        raise InputError(
            f"{sub.email} is already a subscriber ({note})"
            if note
            else f"{sub.email} is already subscribed; `digest set` changes its profile"
        )
    return store.add_subscriber(engine, sub)


def _find(engine: Engine, email: str) -> Subscriber | Outcome:
    """The stored row, or the refusal for a bad or unknown address."""
    try:
        address = store.normalise_email(email)
    except InputError as exc:
        return Outcome(email[:320], None, str(exc), refused=True)
    sub = store.get_subscriber(engine, address)
    if sub is None:
        return Outcome(address, None, "no such subscriber", refused=True)
    return sub


def _refuse(sub: Subscriber, why: str) -> Outcome:
    return Outcome(sub.email, sub.status, why, refused=True)


def _set(engine: Engine, sub: Subscriber, message: str, **changes: Any) -> Outcome:
    stored = store.update_subscriber(engine, sub.email, **changes)
    return Outcome(stored.email, stored.status, message, changed=True)


def pause(engine: Engine, email: str) -> Outcome:
    """Stop an active subscription for now, keeping its watermark: `resume` sends the
    papers that came meanwhile (up to max_papers), as the web's pause does."""
    sub = _find(engine, email)
    if isinstance(sub, Outcome):
        return sub
    if sub.status == SubscriberStatus.PAUSED:
        return Outcome(sub.email, sub.status, "already paused")
    if sub.status != SubscriberStatus.ACTIVE:
        return _refuse(sub, f"only an active subscription can be paused ({status_note(sub)})")
    return _set(engine, sub, "paused", status=SubscriberStatus.PAUSED)


def resume(engine: Engine, email: str) -> Outcome:
    """Restart a paused subscription (as the web's resume: bounces cleared)."""
    sub = _find(engine, email)
    if isinstance(sub, Outcome):
        return sub
    if sub.status == SubscriberStatus.ACTIVE:
        return Outcome(sub.email, sub.status, "already active")
    if sub.status != SubscriberStatus.PAUSED:
        return _refuse(sub, f"only a paused subscription can be resumed ({status_note(sub)})")
    return _set(engine, sub, "resumed", status=SubscriberStatus.ACTIVE, bounces=0)


def reactivate(engine: Engine, email: str, unsubscribed_ok: bool = False) -> Outcome:
    """Bring back a suspended (bounces cleared) or, with `unsubscribed_ok`, an
    unsubscribed address. An unsubscribe was the subscriber's own choice: mailing them
    again without their say is what gets a sender reported as spam, so it takes the
    explicit flag. The watermark restarts, as on a confirmation: the first digest
    covers the last DIGEST_FIRST_DIGEST_DAYS, not every paper since they left."""
    sub = _find(engine, email)
    if isinstance(sub, Outcome):
        return sub
    if sub.status == SubscriberStatus.ACTIVE:
        return Outcome(sub.email, sub.status, "already active")
    if sub.status == SubscriberStatus.PAUSED:
        return _refuse(sub, f"it is paused, not stopped; `digest resume {sub.email}`")
    if sub.status == SubscriberStatus.PENDING:
        return _refuse(sub, "it has not confirmed its sign-up; it confirms with the emailed link")
    if sub.status == SubscriberStatus.UNSUBSCRIBED and not unsubscribed_ok:
        since = f" on {sub.unsubscribed_at:%Y-%m-%d}" if sub.unsubscribed_at else ""
        return _refuse(
            sub,
            f"it unsubscribed{since}, by its own choice; mail it again only with its consent "
            "and then add --unsubscribed-ok",
        )
    was = sub.status
    return _set(
        engine,
        sub,
        f"reactivated (was {was})",
        status=SubscriberStatus.ACTIVE,
        bounces=0,
        unsubscribed_at=None,
        confirmed_at=sub.confirmed_at or utcnow(),
        last_paper_seq=None,
    )


def delete(engine: Engine, email: str) -> Outcome:
    """Forget an address and every digest made for it (the web's delete: the same
    store function); the caller also forgets its mail budget, as the web does."""
    sub = _find(engine, email)
    if isinstance(sub, Outcome):
        return sub
    if not store.delete_subscriber(engine, sub.email):  # gone meanwhile
        return Outcome(sub.email, None, "no such subscriber", refused=True)
    return Outcome(sub.email, None, "deleted with its digests", changed=True)
