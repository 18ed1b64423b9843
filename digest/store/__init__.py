"""The database: every SQL statement of digest lives in this package, behind the
functions the stages call (`from digest import store; store.merge_papers(...)`).

| module           | holds                                                        |
|------------------|--------------------------------------------------------------|
| `engine.py`      | engines (SQLite tuned for sharing), the URL as shown, ping   |
| `migrate.py`     | schema versions (Alembic), adopting a pre-migrations database |
| `legacy.py`      | the schema steps of releases before versioned migrations     |
| `migrations/`    | the Alembic environment and revisions, shipped in the wheel  |
| `papers.py`      | merging source records into papers; reading them back        |
| `subscribers.py` | subscribers                                                  |
| `embeddings.py`  | stored paper and interest vectors, per model                 |
| `editions.py`    | digest rows per edition, committed with the watermarks       |
| `outbox.py`      | the lease queue the sender claims from and records into      |
| `status.py`      | delivery counts for `digest status`                          |
| `rates.py`       | the web app's rate events                                    |
| `ratings.py`     | subscribers' "more / less like this" votes on papers          |
| `inbound.py`     | what inbound mail changes (unsubscribe, bounce, complaint), its log |
| `sources.py`     | how far each source has read                                 |
| `transfer.py`    | subscribers in and out in bulk (export / import)             |
| `backup.py`      | a consistent copy of a SQLite database while it is used     |
| `metrics.py`     | cheap aggregate counts for the Prometheus `/metrics` scrape  |
| `retention.py`   | `digest prune`: old messages and events deleted in batches   |

It imports only core modules (models, records, errors), never a stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.lazy_exports import lazy_exports

# The names below are imported from their modules when first used (PEP 562): every
# command opens the database through `engine`, `migrate` and one or two others, and
# must not import the whole package (backups, metrics, retention, ...) to do so.
if TYPE_CHECKING:
    from digest.store.backup import UsePgDump, backup_sqlite, pg_dump_command
    from digest.store.editions import (
        digest_for,
        digests_for_edition,
        edition_summary,
        editions_done,
        last_editions,
    )
    from digest.store.embeddings import (
        count_paper_vectors,
        delete_profile_vectors,
        paper_vectors,
        papers_without_vector,
        profile_vectors,
        save_paper_vectors,
        save_profile_vector,
    )
    from digest.store.engine import (
        DatabaseError,
        Engine,
        has_table,
        make_engine,
        missing_sqlite_file,
        ping,
        shown_url,
    )
    from digest.store.inbound import (
        InboundChange,
        apply_inbound,
        inbound_counts,
        list_inbound_events,
    )
    from digest.store.legacy import add_missing_columns, move_digest_messages
    from digest.store.metrics import LatencyBuckets, MetricsSnapshot, metrics_snapshot
    from digest.store.migrate import (
        HEAD,
        Revision,
        current_revision,
        downgrade,
        ensure_schema,
        history,
        init_db,
        is_known_revision,
        upgrade,
    )
    from digest.store.outbox import NO_MESSAGE, retry_failed
    from digest.store.papers import (
        MergeCounts,
        list_papers,
        max_paper_seq,
        merge_papers,
        paper_ids_by_titles,
        papers_after,
        papers_by_ids,
        papers_version,
        seq_first_seen_since,
        title_key,
    )
    from digest.store.rates import (
        add_rate_event,
        count_rate_events,
        delete_rate_events,
        take_rate_slot,
    )
    from digest.store.ratings import (
        RatedPaper,
        Recorded,
        clear_ratings,
        get_rating,
        list_ratings,
        rated_examples,
        ratings_for,
        record_rating,
        undo_rating,
    )
    from digest.store.retention import DEFAULT_BATCH as PRUNE_BATCH
    from digest.store.retention import PruneReport, prune
    from digest.store.sources import get_source_state, list_source_states, save_source_state
    from digest.store.status import delivery_status, row_counts
    from digest.store.subscribers import (
        add_subscriber,
        add_subscribers,
        any_interest,
        delete_subscriber,
        get_subscriber,
        list_subscribers,
        normalise_email,
        probe_write,
        purge_unconfirmed,
        store_signup,
        subscriber_by_id,
        update_subscriber,
    )
    from digest.store.transfer import (
        ColumnInfo,
        import_subscriber_rows,
        iter_subscriber_rows,
        subscriber_columns,
    )

__all__ = [
    "any_interest",
    "count_paper_vectors",
    "delete_profile_vectors",
    "paper_vectors",
    "papers_without_vector",
    "profile_vectors",
    "save_paper_vectors",
    "save_profile_vector",
    "HEAD",
    "InboundChange",
    "apply_inbound",
    "inbound_counts",
    "list_inbound_events",
    "DatabaseError",
    "Engine",
    "NO_MESSAGE",
    "MergeCounts",
    "RatedPaper",
    "Recorded",
    "Revision",
    "add_missing_columns",
    "add_rate_event",
    "add_subscriber",
    "clear_ratings",
    "add_subscribers",
    "count_rate_events",
    "current_revision",
    "is_known_revision",
    "delete_rate_events",
    "delete_subscriber",
    "delivery_status",
    "row_counts",
    "digest_for",
    "digests_for_edition",
    "downgrade",
    "edition_summary",
    "ensure_schema",
    "editions_done",
    "get_rating",
    "get_source_state",
    "get_subscriber",
    "has_table",
    "history",
    "init_db",
    "last_editions",
    "list_papers",
    "list_ratings",
    "list_source_states",
    "list_subscribers",
    "make_engine",
    "max_paper_seq",
    "merge_papers",
    "move_digest_messages",
    "normalise_email",
    "paper_ids_by_titles",
    "papers_after",
    "papers_by_ids",
    "papers_version",
    "ping",
    "probe_write",
    "prune",
    "PruneReport",
    "PRUNE_BATCH",
    "purge_unconfirmed",
    "rated_examples",
    "ratings_for",
    "record_rating",
    "retry_failed",
    "save_source_state",
    "seq_first_seen_since",
    "shown_url",
    "missing_sqlite_file",
    "store_signup",
    "subscriber_by_id",
    "take_rate_slot",
    "title_key",
    "undo_rating",
    "update_subscriber",
    "upgrade",
    # transfer, backup
    "ColumnInfo",
    "UsePgDump",
    "backup_sqlite",
    "import_subscriber_rows",
    "iter_subscriber_rows",
    "pg_dump_command",
    "subscriber_columns",
    "LatencyBuckets",
    "MetricsSnapshot",
    "metrics_snapshot",
]

_MODULES = {
    "UsePgDump": "backup",
    "backup_sqlite": "backup",
    "pg_dump_command": "backup",
    "digest_for": "editions",
    "digests_for_edition": "editions",
    "edition_summary": "editions",
    "editions_done": "editions",
    "last_editions": "editions",
    "count_paper_vectors": "embeddings",
    "delete_profile_vectors": "embeddings",
    "paper_vectors": "embeddings",
    "papers_without_vector": "embeddings",
    "profile_vectors": "embeddings",
    "save_paper_vectors": "embeddings",
    "save_profile_vector": "embeddings",
    "DatabaseError": "engine",
    "Engine": "engine",
    "has_table": "engine",
    "make_engine": "engine",
    "missing_sqlite_file": "engine",
    "ping": "engine",
    "shown_url": "engine",
    "InboundChange": "inbound",
    "apply_inbound": "inbound",
    "inbound_counts": "inbound",
    "list_inbound_events": "inbound",
    "add_missing_columns": "legacy",
    "move_digest_messages": "legacy",
    "LatencyBuckets": "metrics",
    "MetricsSnapshot": "metrics",
    "metrics_snapshot": "metrics",
    "HEAD": "migrate",
    "Revision": "migrate",
    "current_revision": "migrate",
    "downgrade": "migrate",
    "ensure_schema": "migrate",
    "history": "migrate",
    "init_db": "migrate",
    "is_known_revision": "migrate",
    "upgrade": "migrate",
    "NO_MESSAGE": "outbox",
    "retry_failed": "outbox",
    "MergeCounts": "papers",
    "list_papers": "papers",
    "max_paper_seq": "papers",
    "merge_papers": "papers",
    "paper_ids_by_titles": "papers",
    "papers_after": "papers",
    "papers_by_ids": "papers",
    "papers_version": "papers",
    "seq_first_seen_since": "papers",
    "title_key": "papers",
    "add_rate_event": "rates",
    "count_rate_events": "rates",
    "delete_rate_events": "rates",
    "take_rate_slot": "rates",
    "RatedPaper": "ratings",
    "Recorded": "ratings",
    "clear_ratings": "ratings",
    "get_rating": "ratings",
    "list_ratings": "ratings",
    "rated_examples": "ratings",
    "ratings_for": "ratings",
    "record_rating": "ratings",
    "undo_rating": "ratings",
    "PRUNE_BATCH": "retention",
    "PruneReport": "retention",
    "prune": "retention",
    "get_source_state": "sources",
    "list_source_states": "sources",
    "save_source_state": "sources",
    "delivery_status": "status",
    "row_counts": "status",
    "add_subscriber": "subscribers",
    "add_subscribers": "subscribers",
    "any_interest": "subscribers",
    "delete_subscriber": "subscribers",
    "get_subscriber": "subscribers",
    "list_subscribers": "subscribers",
    "normalise_email": "subscribers",
    "probe_write": "subscribers",
    "purge_unconfirmed": "subscribers",
    "store_signup": "subscribers",
    "subscriber_by_id": "subscribers",
    "update_subscriber": "subscribers",
    "ColumnInfo": "transfer",
    "import_subscriber_rows": "transfer",
    "iter_subscriber_rows": "transfer",
    "subscriber_columns": "transfer",
}

_RENAMED = {"PRUNE_BATCH": "DEFAULT_BATCH"}


__getattr__, __dir__ = lazy_exports(globals(), _MODULES, _RENAMED)
