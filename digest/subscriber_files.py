"""Subscribers to and from files: CSV and JSON Lines (`digest export`, `digest import`).

The columns are the subscriber table's own (`store.subscriber_columns`), so a field
added to the model flows through both ways unchanged. Every value is checked as a
sign-up is (address, profile, schedule, numbers) plus a type check per column; a row
that fails is reported with its line number and skipped, and the good rows are
imported.

CSV and spreadsheets: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
return is a formula to Excel and LibreOffice (CSV injection). An exported text cell
starting with one of those, or with `'`, gets a leading `'` (OWASP's advice: the
spreadsheet shows the text, and runs nothing); import takes one leading `'` off a text
cell, so export then import gives back the same value (a profile such as
`-survey diffusion` included). JSON Lines is written as is.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from digest import store, subscriptions
from digest.config import Settings
from digest.errors import InputError
from digest.models import utcnow
from digest.states import SubscriberStatus
from digest.store import Engine
from digest.store.transfer import ColumnInfo

FORMATS = ("csv", "jsonl")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
MAX_RECORD_CHARS = 128 * 1024  # csv's own field limit; a profile is at most 4,000
INT_RANGE = (-(2**31), 2**31 - 1)  # every integer column is a 32-bit INTEGER on PostgreSQL
# A file's `id` above this is not kept (the row gets a new one): one row with id
# 2**31 - 1 would leave the id sequence nowhere to go, and every later sign-up failing.
MAX_KEPT_ID = 10**9
BATCH = 500
OPT_IN = ("keep", "confirmed", "pending")


def format_of(path: str, given: str | None) -> str:
    """The file format: as given, else from the extension (.csv, .jsonl / .ndjson)."""
    if given is not None:
        fmt = given.strip().lower()
        if fmt not in FORMATS:
            raise InputError(f"--format: expected csv or jsonl, got {given!r}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise InputError(f"cannot tell the format of {path!r} from its name; give --format csv|jsonl")


# ---------------------------------------------------------------- export


def _plain(value: Any) -> Any:
    """A column value as JSON carries it."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _csv_cell(column: ColumnInfo, value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if column.kind == "bool":
        return "true" if value else "false"
    if column.kind == "json":
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if column.kind == "str" and text.startswith(FORMULA_START):
        return "'" + text  # CSV injection: see the module docstring
    return text


def write_export(engine: Engine, stream: IO[str], fmt: str) -> int:
    """Write every subscriber to `stream` (opened with newline=""); how many."""
    columns = store.subscriber_columns()
    count = 0
    if fmt == "csv":
        writer = csv.writer(stream)
        writer.writerow([c.name for c in columns])
        for row in store.iter_subscriber_rows(engine):
            writer.writerow([_csv_cell(c, row.get(c.name)) for c in columns])
            count += 1
        return count
    for row in store.iter_subscriber_rows(engine):
        data = {c.name: _plain(row.get(c.name)) for c in columns}
        stream.write(json.dumps(data, ensure_ascii=False) + "\n")
        count += 1
    return count


# ---------------------------------------------------------------- import


@dataclass
class ImportOptions:
    update: bool = False  # known addresses: overwrite (True) or leave alone
    opt_in: str = "keep"  # keep the file's status, or mark rows confirmed / pending
    dry_run: bool = False


@dataclass
class ImportReport:
    format: str
    dry_run: bool
    read: int = 0
    imported: int = 0
    updated: int = 0
    skipped_existing: int = 0
    new_ids: int = 0
    kept_status: int = 0  # stored unsubscribed / suspended rows --update left so
    signed_up: int = 0  # new in the file, but signed up meanwhile: counted as stored
    watermarks_reset: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    warnings: list[str] = field(default_factory=list)

    MAX_ERRORS = 1000  # listed; every one is counted

    def error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.MAX_ERRORS:
            self.errors.append({"line": line, "error": message[:500]})

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _records(
    stream: IO[str], fmt: str, report: ImportReport
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, raw record) for each record; a record that cannot be read at
    all is reported here and skipped."""
    if fmt == "jsonl":
        for number, line in enumerate(_lines(stream, report), 1):
            if line is None or not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                report.error(number, f"not JSON: {exc}")
                continue
            except RecursionError:  # `[[[[...` within the line limit
                report.error(number, "not JSON: nested too deeply")
                continue
            if not isinstance(data, dict):
                report.error(number, "not a JSON object")
                continue
            yield number, data
        return
    # A skipped over-long line reads as a blank one: the reader's line count (our line
    # numbers) then stays the file's.
    reader = csv.reader("\n" if line is None else line for line in _lines(stream, report))
    header: list[str] | None = None
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.error(start, f"not CSV: {exc}")
            start = reader.line_num + 1
            continue
        number, start = start, reader.line_num + 1
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip().lstrip("\ufeff") for c in cells]
            if "email" not in header:
                raise InputError("the CSV header has no `email` column (line 1)")
            continue
        if len(cells) != len(header):
            report.error(number, f"{len(cells)} cells, the header has {len(header)}")
            continue
        yield number, dict(zip(header, cells, strict=True))


def _lines(stream: IO[str], report: ImportReport) -> Iterator[str | None]:
    """The stream's lines, each read up to MAX_RECORD_CHARS: a longer one is reported
    and yields None (its number still counts), so one huge line costs no memory."""
    number = 0
    while True:
        line = stream.readline(MAX_RECORD_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_RECORD_CHARS and not line.endswith("\n"):
            while (more := stream.readline(MAX_RECORD_CHARS)) and not more.endswith("\n"):
                pass
            report.error(number, f"longer than {MAX_RECORD_CHARS} characters")
            yield None
            continue
        yield line


def _value(column: ColumnInfo, raw: Any, from_csv: bool) -> Any:
    """A file value as the column stores it; raises ValueError naming what is wrong."""
    if isinstance(raw, str):
        if any("\udc80" <= ch <= "\udcff" for ch in raw):
            raise ValueError("is not valid UTF-8")
        if from_csv and column.kind != "json" and raw == "":
            return None if column.nullable else column.default
        if from_csv and column.kind == "str" and raw.startswith("'"):
            raw = raw[1:]  # the export's formula guard
    if raw is None:
        if column.nullable or column.default is not None:
            return None if column.nullable else column.default
        raise ValueError("is required")
    kind = column.kind
    if kind == "str":
        if not isinstance(raw, str):
            raise ValueError("must be text")
        if "\x00" in raw:  # PostgreSQL refuses it, and would fail the whole batch
            raise ValueError("contains a NUL character")
        return raw
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError("must be true or false")
    if kind == "int":
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError("must be a whole number")
        whole = int(str(raw).strip()) if not isinstance(raw, int | float) else int(raw)
        if not INT_RANGE[0] <= whole <= INT_RANGE[1]:
            raise ValueError("is out of range")
        return whole
    if kind == "float":
        number = float(raw) if not isinstance(raw, bool) else math.nan
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if kind in ("datetime", "date"):
        if not isinstance(raw, str):
            raise ValueError("must be an ISO date/time")
        if kind == "date":
            return date.fromisoformat(raw.strip())
        stamp = datetime.fromisoformat(raw.strip())
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    if from_csv and isinstance(raw, str):  # json
        return json.loads(raw) if raw.strip() else column.default
    return raw


class RowChecker:
    """Turns a raw record into the values of one subscriber row, checked like a
    sign-up: the address, the profile (parsed), the schedule, the numbers, the
    status; then the opt-in choice. Raises InputError naming the field."""

    def __init__(self, settings: Settings, options: ImportOptions, top_seq: int) -> None:
        self.settings = settings
        self.options = options
        self.top_seq = top_seq
        self.columns = {c.name: c for c in store.subscriber_columns()}

    def unknown_fields(self, names: Iterable[str]) -> list[str]:
        return sorted(set(names) - set(self.columns))

    def row(self, raw: dict[str, Any], from_csv: bool) -> tuple[dict[str, Any], bool]:
        """The checked row, and whether its watermark was dropped (see `_watermark`)."""
        values: dict[str, Any] = {}
        for name, column in self.columns.items():
            if name not in raw:
                continue
            try:
                values[name] = _value(column, raw[name], from_csv)
            except ValueError as exc:
                raise InputError(f"{name}: {str(exc)[:200]}") from None
        email = values.get("email")
        if not email:
            raise InputError("email: is required")
        likes = values.get("likes")
        if likes is not None and not isinstance(likes, list):
            raise InputError('likes: must be a list of arXiv ids, such as ["2305.18290"]')
        sub = subscriptions.new_subscriber(
            self.settings,
            email,
            values.get("keywords") or "",
            interest=values.get("interest"),
            likes=likes,
            max_papers=values.get("max_papers"),
            min_score=values.get("min_score"),
            timezone=values.get("timezone"),
            send_at=values.get("send_at"),
            frequency=values.get("frequency"),
            weekday=values.get("weekday"),
        )
        checked = {name: getattr(sub, name) for name in self.columns if name != "id"}
        for name, value in values.items():  # the rest of the file's fields, as typed
            if name not in _CHECKED and name != "id":
                checked[name] = value
        if values.get("id") is not None and 0 < values["id"] <= MAX_KEPT_ID:
            checked["id"] = values["id"]
        for name in ("bounces", "token_version", "max_papers"):
            if checked.get(name) is not None and checked[name] < 0:
                raise InputError(f"{name}: must be 0 or more")
        if "status" in values and values["status"] not in set(SubscriberStatus):
            raise InputError(
                f"status: expected one of {', '.join(SubscriberStatus)}, got {values['status']!r}"
            )
        self._opt_in(checked, "status" in values)
        return checked, self._watermark(checked)

    def update_fields(self, raw: dict[str, Any]) -> frozenset[str]:
        """The columns `--update` overwrites in a stored row: those the file has (and
        `weekday`, which the checks derive from `frequency`; the opt-in dates, with
        `status`). A file of `email,keywords` fixes profiles and leaves schedules,
        watermarks, dates and the opt-in state as they are."""
        given = (set(raw) & set(self.columns)) - {"id"}
        given.add("email")
        if "frequency" in given:
            given.add("weekday")
        if "status" in given:
            given |= (
                {"confirmed_at", "created_at"}
                if self.options.opt_in == "pending"
                else {"confirmed_at"}
            )
        return frozenset(given)

    def _opt_in(self, row: dict[str, Any], status_given: bool) -> None:
        """Double opt-in: keep the file's state (a row without one is active and
        confirmed, as `digest subscribe` makes it), or mark every row that would be
        mailed confirmed or pending. Paused, suspended and unsubscribed rows keep
        their status whatever the flag: an unsubscribe is never undone by import."""
        if not status_given:
            row["status"] = SubscriberStatus.ACTIVE
        mode = self.options.opt_in
        mailed = row["status"] in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING)
        if mode == "confirmed" and mailed:
            row["status"] = SubscriberStatus.ACTIVE
        elif mode == "pending" and mailed:
            row.update(status=SubscriberStatus.PENDING, confirmed_at=None, created_at=utcnow())
        if row["status"] == SubscriberStatus.ACTIVE and row.get("confirmed_at") is None:
            row["confirmed_at"] = utcnow()

    def _watermark(self, row: dict[str, Any]) -> bool:
        """A watermark (`last_paper_seq`) names papers of the database it came from;
        one past this database's newest paper would skip every paper until then, so
        it is dropped (the next digest covers DIGEST_FIRST_DIGEST_DAYS instead)."""
        seq = row.get("last_paper_seq")
        if seq is not None and seq > self.top_seq:
            row["last_paper_seq"] = None
            return True
        return False


# Fields `subscriptions.new_subscriber` checks and normalises; the rest are typed only.
_CHECKED = frozenset(
    {
        "email",
        "keywords",
        "interest",
        "likes",
        "max_papers",
        "min_score",
        "timezone",
        "send_at",
        "frequency",
        "weekday",
    }
)


def import_stream(
    engine: Engine,
    settings: Settings,
    stream: IO[str],
    fmt: str,
    options: ImportOptions,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Read, check and store subscribers from `stream`, BATCH rows a transaction."""
    report = ImportReport(format=fmt, dry_run=options.dry_run)
    checker = RowChecker(settings, options, store.max_paper_seq(engine))
    seen: dict[str, int] = {}
    batch: list[dict[str, Any]] = []
    fields: list[frozenset[str]] = []  # per row: what an update of it overwrites
    warned_unknown = False

    def flush() -> None:
        if not batch:
            return
        done = store.import_subscriber_rows(
            engine, batch, options.update, options.dry_run, update_fields=fields
        )
        report.imported += len(done.inserted)
        report.updated += len(done.updated)
        report.skipped_existing += len(done.existing)
        report.new_ids += done.new_ids
        report.kept_status += len(done.kept_status)
        report.signed_up += done.signed_up
        if progress is not None:
            progress(len(batch))
        batch.clear()
        fields.clear()

    for number, raw in _records(stream, fmt, report):
        report.read += 1
        unknown = checker.unknown_fields(raw)
        if unknown and not warned_unknown:
            report.warnings.append(f"ignored unknown field(s): {', '.join(unknown)[:300]}")
            warned_unknown = True
        try:
            row, reset = checker.row(raw, from_csv=fmt == "csv")
        except InputError as exc:
            report.error(number, str(exc).splitlines()[0])
            continue
        first = seen.get(row["email"])
        if first is not None:
            report.error(number, f"{row['email']} is already on line {first}; skipped")
            continue
        seen[row["email"]] = number
        report.watermarks_reset += reset
        batch.append(row)
        fields.append(checker.update_fields(raw))
        if len(batch) >= BATCH:
            flush()
    flush()
    return report
