"""Subscribers in and out in bulk (`digest export` / `digest import`): the columns
read from the table itself, so a column added to `Subscriber` (and its migration)
is exported and imported with no change here.

Rows are streamed out in id order and written in batches, one transaction each, so
a file of any size needs memory for one batch only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, Numeric, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator, TypeEngine

from digest.models import Subscriber
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


def import_subscriber_rows(
    engine: Engine, rows: Sequence[dict[str, Any]], update: bool, dry_run: bool = False
) -> BatchResult:
    """Insert rows whose address is new and, with `update`, overwrite the stored
    fields of known ones (their id kept); one transaction for the batch. A new row
    keeps the `id` it carries when no other row has it, so links mailed from the
    database it was exported from still name it; otherwise it gets a new one. With
    `dry_run`, works out the same answer and writes nothing."""
    emails = [r["email"] for r in rows]
    result = BatchResult([], [], [])
    with engine.begin() as conn:
        known = set(conn.execute(select(_S.c.email).where(_S.c.email.in_(emails))).scalars())
        wanted = [r["id"] for r in rows if r.get("id") is not None and r["email"] not in known]
        taken = set(conn.execute(select(_S.c.id).where(_S.c.id.in_(wanted))).scalars())
        for row in rows:
            values = {k: v for k, v in row.items() if k != "id"}
            if row["email"] in known:
                if not update:
                    result.existing.append(row["email"])
                    continue
                if not dry_run:
                    conn.execute(_S.update().where(_S.c.email == row["email"]).values(**values))
                result.updated.append(row["email"])
                continue
            if row.get("id") is not None and row["id"] not in taken:
                values["id"] = row["id"]
                taken.add(row["id"])
            else:
                result.new_ids += 1
            if not dry_run:
                conn.execute(_S.insert().values(**values))
            result.inserted.append(row["email"])
        if dry_run:
            conn.rollback()
    return result


def after_import(engine: Engine) -> None:
    """PostgreSQL's id sequence does not move when rows are inserted with their own
    ids: set it past the highest, or the next sign-up would collide. (SQLite's
    AUTOINCREMENT keeps track by itself.)"""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        top = conn.execute(select(func.max(_S.c.id))).scalar_one() or 0
        if top:
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('subscriber', 'id'), :top)"),
                {"top": top},
            )
