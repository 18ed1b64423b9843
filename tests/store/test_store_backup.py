"""`digest backup`: consistent while another process writes; restores to the same
`digest subscribers --json`; no silent overwrite; PostgreSQL points at pg_dump."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap

from conftest import clean_exit, strict_json

WRITER = textwrap.dedent(
    """
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1], timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    n = 0
    while True:
        with db:  # one transaction: a subscriber and a rate event together
            db.execute(
                "INSERT INTO subscriber (email, status, keywords, max_papers, timezone, send_at,"
                " frequency, notify_empty, bounces, created_at, token_version)"
                " VALUES (?, 'active', 'x', 20, 'UTC', '07:00', 'daily', 0, 0,"
                " '2026-01-01 00:00:00', 0)", (f"w{n}@example.org",))
            db.execute("INSERT INTO rateevent (bucket, created_at) VALUES (?, '2026-01-01')",
                       (f"w{n}",))
        n += 1
        if n == 50:
            print("writing", flush=True)
    """
)


def test_backup_while_a_writer_runs_is_consistent_and_restores(cli, env, tmp_path):
    clean_exit(cli("subscribe", "ada@example.org", "-k", "diffusion"), 0)
    db = tmp_path / "digest.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        backups = [tmp_path / f"backup{i}.db" for i in range(3)]
        for path in backups:
            clean_exit(cli("backup", str(path)), 0)
        assert writer.poll() is None  # it wrote all along
    finally:
        writer.kill()
        writer.wait()
    counts = []
    for path in backups:
        copy = sqlite3.connect(path)
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        subs, events = copy.execute(
            "SELECT (SELECT count(*) FROM subscriber WHERE email LIKE 'w%'),"
            " (SELECT count(*) FROM rateevent)"
        ).fetchone()
        assert subs == events  # one snapshot: each writer transaction whole or absent
        counts.append(subs)
        copy.close()
    assert counts[-1] > 0 and counts == sorted(counts)

    # restore: stop digest, copy the file into place, `digest db current`
    before = strict_json(cli("subscribers", "--json").stdout)
    clean_exit(cli("backup", str(tmp_path / "final.db")), 0)
    clean_exit(cli("delete", "ada@example.org", "--yes"), 0)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"digest.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(tmp_path / "final.db", db)
    current = cli("db", "current", "--json")
    clean_exit(current, 0)
    assert strict_json(current.stdout)["at_head"] is True
    assert strict_json(cli("subscribers", "--json").stdout) == before


def test_backup_refuses_to_overwrite(cli, tmp_path):
    target = tmp_path / "b.db"
    target.write_text("precious")
    res = cli("backup", str(target))
    clean_exit(res, 2)
    assert "--overwrite" in res.stderr and target.read_text() == "precious"
    clean_exit(cli("backup", str(target), "--overwrite", "--json"), 0)
    assert sqlite3.connect(target).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_postgres_backup_says_pg_dump(postgres_url, env, tmp_path):
    from conftest import digest_init, run_cli

    pg_env = {**env, "DIGEST_DATABASE_URL": postgres_url}
    digest_init(pg_env)
    res = run_cli(["backup", str(tmp_path / "x.dump")], pg_env)
    clean_exit(res, 2)
    assert "pg_dump --format=custom" in res.stderr
    assert not (tmp_path / "x.dump").exists()
