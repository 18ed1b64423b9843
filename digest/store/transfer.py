"""Subscribers in and out in bulk (`digest export` / `digest import`): the columns
read from the table itself, so a column added to `Subscriber` (and its migration)
is exported and imported with no change here.

Rows are streamed out in id order and written in batches, one transaction each, so
a file of any size needs memory for one batch only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, Numeric, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator, TypeEngine

from digest.errors import InputError
from digest.models import Subscriber
from digest.states import SubscriberStatus
from digest.store.engine import table_of

_S = table_of(Subscriber)


@dataclass(frozen=True)
class ColumnInfo:
    """A subscriber column as a file carries it: its name, a kind that says how to
    write and read its value (`str`, `int`, `float`, `bool`, `datetime`, `date`,
    `json`), whether it may be empty, and its default when a file leaves it out."""

    name: str
    kind: str
    nullable: bool
    default: Any


def _kind(sa_type: TypeEngine[Any]) -> str:
    if isinstance(sa_type, TypeDecorator):
        sa_type = sa_type.impl_instance
    for cls, kind in (
        (Boolean, "bool"),
        (Integer, "int"),
        (Float, "float"),
        (Numeric, "float"),
        (DateTime, "datetime"),
        (Date, "date"),
        (JSON, "json"),
    ):
        if isinstance(sa_type, cls):
            return kind
    return "str"


def subscriber_columns() -> list[ColumnInfo]:
    """Every column of the subscriber table, in table order (`id` first)."""
    out = []
    for c in _S.columns:
        default = getattr(c.default, "arg", None) if c.default is not None else None
        default = None if callable(default) else default
        out.append(ColumnInfo(c.name, _kind(c.type), bool(c.nullable), default))
    return out


def iter_subscriber_rows(engine: Engine, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every subscriber row as a dict of column values, in id order, `batch` rows
    read at a time (keyset pages: no long-held cursor, no OFFSET scans)."""
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(_S).where(_S.c.id > last).order_by(_S.c.id).limit(batch)
            ).mappings()
            page = [dict(r) for r in rows]
        if not page:
            return
        yield from page
        last = page[-1]["id"]


@dataclass
class BatchResult:
    inserted: list[str]
    updated: list[str]
    existing: list[str]  # known addresses left alone (skip mode)
    new_ids: int = 0  # inserted rows that could not keep their file's id
    kept_status: list[str] = field(default_factory=list)  # stopped rows --update left stopped
    signed_up: int = 0  # taken for new, but stored meanwhile (a sign-up): known now


# A stored row in one of these statuses keeps it (and what stopped it) under --update:
# a stale file must not mail someone who left or whose address bounces.
_STOPPED = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUSPENDED)
_STOP_FIELDS = ("status", "unsubscribed_at", "bounces", "complaints")

_PG_SEQUENCE = "pg_get_serial_sequence('subscriber', 'id')"


def _id_high_water(conn: Connection) -> int:
    """The highest subscriber id this database has ever given out, deleted rows
    included (SQLite's AUTOINCREMENT counter, PostgreSQL's sequence). The id is what
    the mail tokens (bounce VERP, List-Unsubscribe mailto) name, with nothing else:
    an id given to a second person would hand them the first one's bounces and
    unsubscribes, so an imported row may keep its id only above this mark."""
    top = conn.execute(select(func.max(_S.c.id))).scalar() or 0
    if conn.dialect.name == "postgresql":
        seq = conn.execute(text(f"SELECT pg_sequence_last_value({_PG_SEQUENCE}::regclass)"))
    elif conn.dialect.name == "sqlite":
        seq = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'subscriber'"))
    else:
        return int(top)
    return max(int(top), int(seq.scalar() or 0))


def _move_sequence(conn: Connection, top: int) -> None:
    """PostgreSQL's id sequence does not move when rows are inserted with their own
    ids: set it to `top` first, so a sign-up meanwhile or later takes an id above
    them (setval is not rolled back; it only ever moves forward here). SQLite's
    AUTOINCREMENT keeps track by itself."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT setval({_PG_SEQUENCE}, :top)"), {"top": top})


# Times a batch is run again when a row it took for new was stored meanwhile.
IMPORT_ATTEMPTS = 3


def import_subscriber_rows(
    engine: Engine,
    rows: Sequence[dict[str, Any]],
    update: bool,
    dry_run: bool = False,
    update_fields: Sequence[Collection[str]] | None = None,
) -> BatchResult:
    """Insert rows whose address is new and, with `update`, overwrite the stored
    fields of known ones (their id kept; an unsubscribed or suspended one stays so,
    and its token version never goes back). One transaction for the batch. A new
    row keeps the `id` it carries when this database never gave that id out (see
    `_id_high_water`), so links mailed from the database it was exported from
    still name it; otherwise it gets a new one. `update_fields`, one per row, names
    the columns an update of that row may overwrite (None: all). With `dry_run`,
    works out the same answer and writes nothing.

    An address that signs up on the web (or an id it takes) between this batch's
    read and its insert makes the insert fail on the unique index: the batch is
    rolled back and run again against what is stored now, where that address is
    a known one (skipped, or updated with `update`) and counted in `signed_up`."""
    planned: list[set[str]] = []
    attempt = 1
    while True:
        try:
            result = _import_batch(engine, rows, update, dry_run, update_fields, planned)
            break
        except IntegrityError as exc:
            if attempt >= IMPORT_ATTEMPTS:
                reason = str(exc.orig).strip().splitlines()[0][:200] if exc.orig else "conflict"
                raise InputError(
                    f"a batch of this import met rows stored meanwhile {attempt} times "
                    f"({reason}); run it again: what was stored by then is known"
                ) from None
            attempt += 1
    meanwhile = planned[0] - set(result.inserted)
    result.signed_up = len(meanwhile & {*result.existing, *result.updated})
    return result


def _import_batch(
    engine: Engine,
    rows: Sequence[dict[str, Any]],
    update: bool,
    dry_run: bool,
    update_fields: Sequence[Collection[str]] | None,
    planned: list[set[str]],
) -> BatchResult:
    """One try at `import_subscriber_rows`; the addresses it takes for new are
    appended to `planned` before it writes."""
    emails = [r["email"] for r in rows]
    result = BatchResult([], [], [])
    with engine.begin() as conn:
        known = {
            email: (status, version)
            for email, status, version in conn.execute(
                select(_S.c.email, _S.c.status, _S.c.token_version).where(_S.c.email.in_(emails))
            )
        }
        high = _id_high_water(conn)
        kept = set()
        inserts, updates = [], []
        for index, row in enumerate(rows):
            values = {k: v for k, v in row.items() if k != "id"}
            if row["email"] in known:
                if not update:
                    result.existing.append(row["email"])
                    continue
                if update_fields is not None:
                    allowed = update_fields[index]
                    values = {k: v for k, v in values.items() if k in allowed or k == "email"}
                status, version = known[row["email"]]
                if status in _STOPPED and values.get("status", status) != status:
                    values = {k: v for k, v in values.items() if k not in _STOP_FIELDS}
                    result.kept_status.append(row["email"])
                if values.get("token_version") is not None:
                    values["token_version"] = max(values["token_version"], version)
                updates.append(values)
                result.updated.append(row["email"])
                continue
            wanted = row.get("id")
            if wanted is not None and wanted > high and wanted not in kept:
                values["id"] = wanted
                kept.add(wanted)
            else:
                result.new_ids += 1
            inserts.append(values)
            result.inserted.append(row["email"])
        planned.append(set(result.inserted))
        if dry_run:
            conn.rollback()
            return result
        if kept:
            _move_sequence(conn, max(kept))
        for values in updates:
            conn.execute(_S.update().where(_S.c.email == values["email"]).values(**values))
        for values in inserts:
            conn.execute(_S.insert().values(**values))
    return result
