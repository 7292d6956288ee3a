"""A commit the filesystem refuses: the user must see the filesystem's error, not the rollback's.

The child process lowers its file-size limit (RLIMIT_FSIZE) and ignores SIGXFSZ, so the kernel
refuses DuckDB's writes past the limit with EFBIG ("File too large"), as a full disk refuses
them with ENOSPC: a real failing write, on demand, without root or a small filesystem.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from nostr_assets.lib.warehouse.schema import ensure_raw_tables

resource = pytest.importorskip("resource")

CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    from datetime import UTC, datetime, timedelta
    import duckdb
    from nostr_assets.lib.warehouse.landing import replace_window

    path, limit = sys.argv[1], int(sys.argv[2])
    conn = duckdb.connect(path)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {"snapshot_hour": start, "relay_url": f"wss://r{i}.example", "observed_at": start,
         "is_reachable": False, "error_message": "x" * 2000}
        for i in range(20_000)
    ]
    try:
        replace_window(conn, "relay_snapshots", "snapshot_hour", start,
                       start + timedelta(hours=1), rows)
    except duckdb.Error as error:
        print(f"{type(error).__name__}: {error}")
        sys.exit(3)
    print("landed")
    """
)


def test_a_failed_commit_reports_the_filesystem_error(tmp_path):
    path = tmp_path / "full.duckdb"
    with duckdb.connect(str(path)) as conn:
        ensure_raw_tables(conn)
    limit = path.stat().st_size + 1_000_000  # the tables fit; 40 MB of new rows do not
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 3, child.stdout + child.stderr
    assert "File too large" in child.stdout, child.stdout
    assert "no transaction is active" not in child.stdout
    # Nothing half-landed: the database opens and the window is empty.
    with duckdb.connect(str(path)) as conn:
        assert conn.execute("select count(*) from raw.relay_snapshots").fetchone() == (0,)
