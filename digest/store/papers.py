"""Papers: merging what sources saw, and reading them back by watermark."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime

from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest.models import Paper, utcnow
from digest.records import PaperRecord, canonical_arxiv_id
from digest.store.engine import table_of


@dataclass
class MergeCounts:
    new: int = 0
    updated: int = 0
    known: int = 0
    skipped: int = 0


_MERGE_FIELDS = [f.name for f in fields(PaperRecord) if f.name not in {"source", "update_only"}]


# What describes a paper: kept from the most authoritative source that gave it.
_OWN_FIELDS = frozenset({"title", "abstract", "authors", "published", "categories"})


def _authority(source: str) -> int:
    """0 for a `feed:` source (a third party's feed naming the paper), 1 for the rest
    (arXiv, Hugging Face, the operator's own file)."""
    return 0 if source.startswith("feed:") else 1


def _merge_into(paper: Paper, rec: PaperRecord) -> bool:
    """Merge a record into an existing paper keeping the best of both, and add its
    source to `sources`; True if a field changed. A source added alone is no change:
    a paper stored from one source and now seen by another with nothing new is
    "known" in the fetch report, not "updated" (nor "new": it was stored already)."""
    changed = False
    rank = _authority(rec.source), max((_authority(s) for s in paper.sources), default=0)
    for name in _MERGE_FIELDS:
        if name == "id":
            continue
        new = getattr(rec, name)
        old = getattr(paper, name)
        if name in _OWN_FIELDS and rank[0] != rank[1] and new not in (None, "", []):
            # The paper's own source (arXiv, Hugging Face) describes it; a feed that
            # names it (a blog's related link, anyone's entry id) never rewrites that
            # description, and what feeds said gives way once such a source speaks.
            value = new if rank[0] > rank[1] or old in (None, "", []) else old
        elif name in {"upvotes", "github_stars", "num_comments"}:
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
        paper.sources = [*paper.sources, rec.source]  # stored with the row, not counted
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
            for stored in session.exec(select(Paper).where(col(Paper.id).in_(chunk))):
                existing[stored.id] = stored
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
                counts.updated += 1
            else:
                counts.known += 1
            session.add(paper)  # a source added alone is written too
        session.commit()
    return counts


def list_papers(engine: Engine, since: date | None = None, limit: int | None = None) -> list[Paper]:
    """Stored papers, newest first (by published date, then by when first seen)."""
    with Session(engine) as session:
        stmt = select(Paper)
        if since is not None:
            since_dt = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
            stmt = stmt.where((col(Paper.published) >= since) | (col(Paper.first_seen) >= since_dt))
        stmt = stmt.order_by(
            col(Paper.first_seen).desc(), col(Paper.published).desc(), col(Paper.seq).desc()
        )
        if limit:
            stmt = stmt.limit(limit)
        return list(session.exec(stmt))


def papers_after(engine: Engine, after_seq: int, upto_seq: int | None = None) -> list[Paper]:
    """Papers first stored after watermark `after_seq` (and up to `upto_seq`), oldest first."""
    with Session(engine) as session:
        stmt = select(Paper).where(col(Paper.seq) > after_seq)
        if upto_seq is not None:
            stmt = stmt.where(col(Paper.seq) <= upto_seq)
        return list(session.exec(stmt.order_by(col(Paper.seq))))


def papers_by_ids(engine: Engine, ids: Sequence[str]) -> dict[str, Paper]:
    with Session(engine) as session:
        out: dict[str, Paper] = {}
        for i in range(0, len(ids), 500):
            for p in session.exec(select(Paper).where(col(Paper.id).in_(ids[i : i + 500]))):
                out[p.id] = p
        return out


def max_paper_seq(engine: Engine) -> int:
    """The newest paper a watermark may move to (an edition's, an imported
    subscriber's): the highest seq below which every paper is stored for good. On
    PostgreSQL a paper's seq is taken when it is inserted, not when it commits, so a
    fetch still storing seq 51 while another committed 52 would leave 51 out of a read
    of 52, and every watermark moved to 52 would skip it for good. A SHARE lock on the
    papers table waits for the transactions writing papers to end (and holds new ones
    for the moment of the read); SQLite has one writer at a time, so its seqs commit
    in order."""
    papers = table_of(Paper)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"LOCK TABLE {papers.name} IN SHARE MODE"))
        return int(conn.execute(func.max(papers.c.seq).select()).scalar() or 0)


def papers_version(engine: Engine) -> tuple[int, int, datetime | None]:
    """(count, highest seq, latest update) of the papers table: changes whenever a
    paper is stored, updated or removed, so a cache of papers can tell it is stale
    with one cheap query instead of reading them all."""
    with Session(engine) as session:
        count, top, updated = session.exec(
            select(func.count(), func.max(Paper.seq), func.max(Paper.updated_at))
        ).one()
        return int(count or 0), int(top or 0), updated


def seq_first_seen_since(engine: Engine, moment: datetime) -> int:
    """The watermark just before the first paper seen at or after `moment`."""
    with Session(engine) as session:
        first = session.exec(select(func.min(Paper.seq)).where(Paper.first_seen >= moment)).one()
        if first is None:
            return session.exec(select(func.max(Paper.seq))).one() or 0
        return first - 1


def title_key(title: str) -> str:
    """How titles are compared: case, spacing and a final full stop aside."""
    return " ".join(title.split()).lower().rstrip(".").strip()


def paper_ids_by_titles(engine: Engine, titles: Sequence[str]) -> dict[str, str]:
    """`title_key(title)` -> paper id for the titles some stored paper has (the
    stored titles are cleaned already: whitespace folded)."""
    folded = [" ".join(t.split()).rstrip(".").strip() for t in titles]
    # SQLite's lower() lowers ASCII letters only; PostgreSQL's lowers every letter.
    keys = {v for t in folded if t for v in (t.lower(), _ascii_lower(t))}
    wanted = sorted(variant for key in keys for variant in (key, f"{key}."))
    out: dict[str, str] = {}
    with Session(engine) as session:
        for i in range(0, len(wanted), 500):
            stmt = select(Paper.id, Paper.title).where(
                func.lower(Paper.title).in_(wanted[i : i + 500])
            )
            for paper_id, title in session.exec(stmt):
                out.setdefault(title_key(title), paper_id)
    return out


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
