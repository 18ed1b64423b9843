"""The database: engine set-up, schema creation, and the queries every stage shares.

Sources hand records here; matching, rendering and delivery read from here. All
writes that must be atomic (merge a batch of papers, record an edition) happen in one
transaction each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import JSON, delete, event, func, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import literal as sa_literal
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlmodel import Session, SQLModel, create_engine, select

from digest.errors import InputError
from digest.models import Digest, Paper, RateEvent, SourceState, Subscriber, utcnow
from digest.sources.base import PaperRecord, canonical_arxiv_id


def shown_url(url: str) -> str:
    """The database URL as printed and logged: its password masked."""
    try:
        parsed = make_url(url)
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so that the web app,
    the scheduler and a cron `digest run` can share one file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    """Create missing tables and add missing columns; safe to run any number of times."""
    SQLModel.metadata.create_all(engine)
    add_missing_columns(engine)
    move_digest_messages(engine)


def move_digest_messages(engine: Engine) -> int:
    """A database made before messages had their own table holds them in
    `digest.message`: copy them to `digestmessage` and drop the old column (empty it
    where SQLite is too old to drop columns), in one transaction. Returns how many
    were moved."""
    if not _has_column(engine, "digest", "message"):
        return 0
    sqlite_version = getattr(engine.dialect.dbapi, "sqlite_version_info", None)
    can_drop = engine.dialect.name != "sqlite" or (sqlite_version or (0,)) >= (3, 35)
    try:
        with engine.begin() as conn:
            moved = conn.execute(
                text(
                    "INSERT INTO digestmessage (digest_id, message) "
                    "SELECT id, message FROM digest WHERE message IS NOT NULL "
                    "AND id NOT IN (SELECT digest_id FROM digestmessage)"
                )
            ).rowcount
            if can_drop:
                conn.execute(text('ALTER TABLE digest DROP COLUMN "message"'))
            else:
                conn.execute(text("UPDATE digest SET message = NULL WHERE message IS NOT NULL"))
    except DBAPIError:
        if _has_column(engine, "digest", "message"):
            raise
        return 0  # another process upgraded the database at the same moment
    return moved or 0


def _has_column(engine: Engine, table: str, column: str) -> bool:
    return column in {c["name"] for c in sa_inspect(engine).get_columns(table)}


def _column_default_sql(engine: Engine, column: Any) -> str:
    """A DEFAULT clause for a column added to a table that already holds rows."""
    default = column.default
    if default is None:
        return ""
    if getattr(default, "is_scalar", False):
        literal = sa_literal(default.arg).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
        )
        return f" DEFAULT {literal}"
    if isinstance(column.type, JSON):
        sample = default.arg({}) if callable(default.arg) else default.arg
        return " DEFAULT '[]'" if isinstance(sample, list) else " DEFAULT '{}'"
    return ""


def add_missing_columns(engine: Engine) -> list[str]:
    """`create_all` never changes a table that exists, so a database made by an older
    digest gets the columns added since then here (nullable, with their scalar default),
    which is what `digest init` promises by "upgrade". Returns what was added."""
    inspector = sa_inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                col_type = column.type.compile(dialect=engine.dialect)
                default = _column_default_sql(engine, column)
                conn.execute(
                    text(
                        f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {col_type}{default}'
                    )
                )
                added.append(f"{table.name}.{column.name}")
    return added


# ---------------------------------------------------------------- papers


@dataclass
class MergeCounts:
    new: int = 0
    updated: int = 0
    known: int = 0
    skipped: int = 0


_MERGE_FIELDS = [f.name for f in fields(PaperRecord) if f.name not in {"source", "update_only"}]


def _merge_into(paper: Paper, rec: PaperRecord) -> bool:
    """Merge a record into an existing paper keeping the best of both; True if changed."""
    changed = False
    for name in _MERGE_FIELDS:
        if name == "id":
            continue
        new = getattr(rec, name)
        old = getattr(paper, name)
        if name in {"upvotes", "github_stars", "num_comments"}:
            value = (
                max(v for v in (old, new) if v is not None) if (old, new) != (None, None) else None
            )
        elif name in {"categories", "ai_keywords"}:
            value = list(dict.fromkeys([*old, *new])) if new else old
        elif name in {"title", "abstract"}:
            value = new if new and (rec.update_only or len(new) >= len(old or "")) else old
        elif name == "authors":
            value = new if len(new) > len(old) else old
        elif name == "published":
            # The earliest date wins: arXiv's listing date and a re-featuring on Hugging
            # Face come after the paper's first version.
            value = min((d for d in (old, new) if d is not None), default=None)
        else:
            value = new if new not in (None, "", []) else old
        if value != old:
            setattr(paper, name, value)
            changed = True
    if rec.source not in paper.sources:
        paper.sources = [*paper.sources, rec.source]
        changed = True
    return changed


def _paper_from_record(rec: PaperRecord) -> Paper:
    data = {name: getattr(rec, name) for name in _MERGE_FIELDS}
    return Paper(**data, sources=[rec.source])


def merge_papers(engine: Engine, records: Iterable[PaperRecord]) -> MergeCounts:
    """Insert new papers and merge known ones, in one transaction.

    Records with the same id inside one batch are folded first, so a paper seen by two
    sources in one fetch is still one row. `update_only` records never create a paper.
    When another process (a cron `digest run` beside `digest serve`) inserted one of
    the same new papers first, the batch is merged again against what it stored.
    """
    batch: dict[str, list[PaperRecord]] = {}
    for rec in records:
        canonical = canonical_arxiv_id(rec.id)
        if canonical and canonical != rec.id:
            rec = replace(rec, id=canonical)  # one row per arXiv id, versions folded
        batch.setdefault(rec.id, []).append(rec)
    if not batch:
        return MergeCounts()
    for _ in range(2):
        try:
            return _merge_batch(engine, batch)
        except IntegrityError:
            continue  # another process stored one of these papers first: merge again
    return _merge_batch(engine, batch)


def _merge_batch(engine: Engine, batch: dict[str, list[PaperRecord]]) -> MergeCounts:
    """One attempt at merging a folded batch, in one transaction."""
    counts = MergeCounts()
    with Session(engine) as session:
        existing: dict[str, Paper] = {}
        ids = list(batch)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for paper in session.exec(select(Paper).where(Paper.id.in_(chunk))):
                existing[paper.id] = paper
        now = utcnow()
        for pid, recs in batch.items():
            paper = existing.get(pid)
            if paper is None:
                creators = [r for r in recs if not r.update_only]
                if not creators:
                    counts.skipped += 1
                    continue
                paper = _paper_from_record(creators[0])
                for rec in recs[1:] if recs[0] is creators[0] else recs:
                    if rec is not creators[0]:
                        _merge_into(paper, rec)
                paper.first_seen = now
                paper.updated_at = now
                session.add(paper)
                counts.new += 1
                continue
            changed = False
            for rec in recs:
                changed = _merge_into(paper, rec) or changed
            if changed:
                paper.updated_at = now
                session.add(paper)
                counts.updated += 1
            else:
                counts.known += 1
        session.commit()
    return counts


def list_papers(engine: Engine, since: date | None = None, limit: int | None = None) -> list[Paper]:
    """Stored papers, newest first (by published date, then by when first seen)."""
    with Session(engine) as session:
        stmt = select(Paper)
        if since is not None:
            since_dt = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
            stmt = stmt.where((Paper.published >= since) | (Paper.first_seen >= since_dt))
        stmt = stmt.order_by(Paper.first_seen.desc(), Paper.published.desc(), Paper.seq.desc())
        if limit:
            stmt = stmt.limit(limit)
        return list(session.exec(stmt))


def papers_after(engine: Engine, after_seq: int, upto_seq: int | None = None) -> list[Paper]:
    """Papers first stored after watermark `after_seq` (and up to `upto_seq`), oldest first."""
    with Session(engine) as session:
        stmt = select(Paper).where(Paper.seq > after_seq)
        if upto_seq is not None:
            stmt = stmt.where(Paper.seq <= upto_seq)
        return list(session.exec(stmt.order_by(Paper.seq)))


def papers_by_ids(engine: Engine, ids: Sequence[str]) -> dict[str, Paper]:
    with Session(engine) as session:
        out: dict[str, Paper] = {}
        for i in range(0, len(ids), 500):
            for p in session.exec(select(Paper).where(Paper.id.in_(ids[i : i + 500]))):
                out[p.id] = p
        return out


def max_paper_seq(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.max(Paper.seq))).one() or 0


def seq_first_seen_since(engine: Engine, moment: datetime) -> int:
    """The watermark just before the first paper seen at or after `moment`."""
    with Session(engine) as session:
        first = session.exec(select(func.min(Paper.seq)).where(Paper.first_seen >= moment)).one()
        if first is None:
            return session.exec(select(func.max(Paper.seq))).one() or 0
        return first - 1


# ---------------------------------------------------------------- subscribers


def normalise_email(address: str) -> str:
    """Validate an address and return the form we store and send to: ASCII, with an
    internationalised domain in its IDNA (xn--) form, lower-cased.

    The local part keeps its case per RFC 5321, but we compare case-insensitively, as
    every real mailbox provider does. Non-ASCII local parts would need SMTPUTF8, which
    we do not speak, so they are refused here rather than failing at send time.
    """
    if not isinstance(address, str) or len(address) > 320 or any(c in address for c in "\r\n"):
        raise InputError(f"invalid email address {str(address)[:80]!r}")
    try:
        info = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email address {address[:80]!r}: {exc}") from None
    return (info.ascii_email or info.normalized).lower()


def get_subscriber(engine: Engine, email: str) -> Subscriber | None:
    with Session(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def add_subscriber(engine: Engine, subscriber: Subscriber) -> Subscriber:
    """Insert; an existing address is an InputError and nothing is written."""
    with Session(engine) as session:
        session.add(subscriber)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise InputError(f"{subscriber.email} is already subscribed") from None
        session.refresh(subscriber)
        return subscriber


def update_subscriber(engine: Engine, email: str, **changes: Any) -> Subscriber:
    with Session(engine) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if sub is None:
            raise InputError(f"no subscriber with address {email}")
        for key, value in changes.items():
            setattr(sub, key, value)
        session.add(sub)
        session.commit()
        session.refresh(sub)
        return sub


def list_subscribers(engine: Engine, status: str | None = None) -> list[Subscriber]:
    with Session(engine) as session:
        stmt = select(Subscriber)
        if status:
            stmt = stmt.where(Subscriber.status == status)
        return list(session.exec(stmt.order_by(Subscriber.id)))


# ---------------------------------------------------------------- sources


def get_source_state(engine: Engine, name: str) -> SourceState:
    with Session(engine) as session:
        return session.get(SourceState, name) or SourceState(name=name)


def save_source_state(engine: Engine, state: SourceState) -> None:
    with Session(engine) as session:
        session.merge(state)
        session.commit()


def list_source_states(engine: Engine) -> list[SourceState]:
    with Session(engine) as session:
        return list(session.exec(select(SourceState).order_by(SourceState.name)))


# ---------------------------------------------------------------- digests


def digests_for_edition(engine: Engine, edition: str | None = None) -> list[Digest]:
    with Session(engine) as session:
        stmt = select(Digest)
        if edition:
            stmt = stmt.where(Digest.edition == edition)
        return list(session.exec(stmt.order_by(Digest.id)))


def last_editions(engine: Engine, subscriber_ids: Sequence[int]) -> dict[int, tuple[datetime, str]]:
    """Subscriber id -> (when their latest edition was built, the latest edition key),
    counting sent, pending and empty ones: the scheduler's memory of whom it served."""
    out: dict[int, tuple[datetime, str]] = {}
    with Session(engine) as session:
        for i in range(0, len(subscriber_ids), 500):
            chunk = list(subscriber_ids[i : i + 500])
            stmt = (
                select(Digest.subscriber_id, func.max(Digest.created_at), func.max(Digest.edition))
                .where(Digest.subscriber_id.in_(chunk))
                .group_by(Digest.subscriber_id)
            )
            out.update({sid: (at, ed) for sid, at, ed in session.exec(stmt) if at is not None})
    return out


def digest_for(engine: Engine, subscriber_id: int, edition: str) -> Digest | None:
    with Session(engine) as session:
        return session.exec(
            select(Digest)
            .where(Digest.subscriber_id == subscriber_id)
            .where(Digest.edition == edition)
        ).first()


def edition_summary(engine: Engine) -> list[dict[str, Any]]:
    """Per edition: how many outbox rows are in each status, newest edition first."""
    with Session(engine) as session:
        rows = session.exec(
            select(Digest.edition, Digest.status, func.count()).group_by(
                Digest.edition, Digest.status
            )
        ).all()
    out: dict[str, dict[str, int]] = {}
    for edition, status, count in rows:
        out.setdefault(edition, {})[status] = count
    return [
        {"edition": e, "total": sum(c.values()), "statuses": c}
        for e, c in sorted(out.items(), reverse=True)
    ]


def delete_subscriber(engine: Engine, email: str) -> bool:
    """Delete a subscriber and every outbox row made for them; False if unknown."""
    with Session(engine) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if sub is None:
            return False
        session.exec(delete(Digest).where(Digest.subscriber_id == sub.id))
        session.delete(sub)
        session.commit()
        return True


def purge_unconfirmed(engine: Engine, before: datetime) -> int:
    """Forget sign-ups never confirmed and started before `before`; how many went."""
    stmt = (
        delete(Subscriber)
        .where(Subscriber.status == "pending")
        .where(Subscriber.confirmed_at.is_(None))
        .where(Subscriber.created_at < before)
    )
    with Session(engine) as session:
        result = session.exec(stmt)
        session.commit()
        return result.rowcount or 0


# ---------------------------------------------------------------- rate limits


def count_rate_events(engine: Engine, bucket: str, since: datetime) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count())
            .select_from(RateEvent)
            .where(RateEvent.bucket == bucket)
            .where(RateEvent.created_at >= since)
        ).one()


def add_rate_event(engine: Engine, bucket: str) -> None:
    with Session(engine) as session:
        session.add(RateEvent(bucket=bucket))
        session.commit()


def delete_rate_events(
    engine: Engine, buckets: Sequence[str] = (), before: datetime | None = None
) -> None:
    """Forget events in `buckets`, or all events older than `before`."""
    stmt = delete(RateEvent)
    if buckets:
        stmt = stmt.where(RateEvent.bucket.in_(list(buckets)))
    if before is not None:
        stmt = stmt.where(RateEvent.created_at < before)
    with Session(engine) as session:
        session.exec(stmt)
        session.commit()
