"""Protects parallel writers on DuckLake: several processes landing different hours of one lake at
once (SQLite catalog always, Postgres where its server starts) leave exactly the rows one writer
leaves in a DuckDB file; a transaction that loses to another writer (a real one, committing in
between) is run again and its rows kept; one that loses every time fails with the reason and
changes nothing; other errors are never retried. A SQLite catalog is in write-ahead-log mode.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from relays import BASE_HOUR, SECRET_KEYS

from nostr_assets.lib.protocol.event import sign_event
from nostr_assets.lib.warehouse import event_landing, raw_table
from nostr_assets.lib.warehouse.event_landing import land_window
from nostr_assets.lib.warehouse.lake import connect_lake
from nostr_assets.lib.warehouse.raw_table import (
    WriterConflict,
    conflicts_retried,
    in_transaction,
    is_conflict,
)
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.lib.warehouse.tables.event_relay_sightings import sighting_rows
from nostr_assets.lib.warehouse.tables.nostr_events import event_rows

# The server fixtures (postgres_server) for the Postgres catalog.
pytest_plugins = ["lake_servers"]

HOUR = timedelta(hours=1)
FIRST = datetime.fromtimestamp(BASE_HOUR, UTC)
WINDOWS = 6  # hours landed, two by each of three writers
RELAYS = ["wss://a.example", "wss://b.example"]

# One writer process, as a step of a backfill run: checks the raw tables (all writers start at
# once, so they race to create them), then lands its hours; prints the conflicts it retried.
WRITER = """
import json, sys
sys.path[:0] = json.loads(sys.argv[2])
from test_lake_writers import land_hours
from nostr_assets.lib.warehouse.lake import connect_lake
from nostr_assets.lib.warehouse.raw_table import conflicts_retried
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
job = json.loads(sys.argv[1])
conn = connect_lake(job["catalog"], job["data_path"])
ensure_raw_tables(conn)
land_hours(conn, job["hours"])
conn.close()
print(conflicts_retried())
"""


def hour_events(index: int):
    start = BASE_HOUR + index * 3600
    return [
        sign_event(SECRET_KEYS[i % 4], start + 97 * i, 1, [], f"h{index} n{i}", bytes(32))
        for i in range(30)
    ]


def land_hours(conn: duckdb.DuckDBPyConnection, hours: list[int]) -> None:
    """Land each hour of ``hours`` (indexes from FIRST): its events seen on both relays."""
    for index in hours:
        start = FIRST + index * HOUR
        events = hour_events(index)
        seen = {e.id: e.created_at + 5.0 for e in events}
        created = {e.id: e.created_at for e in events}
        pairs = [
            (e.id, relay, e.created_at + 5.0 + i) for e in events for i, relay in enumerate(RELAYS)
        ]
        stats = [
            {
                "created_hour": start,
                "relay_url": relay,
                "fetched_at": start + 2 * HOUR,
                "events": len(events),
                "duplicates": 0,
                "invalid_ids": 0,
                "invalid_signatures": 0,
                "invalid_other": 0,
                "bad_frames": 0,
                "pages": 1,
                "possibly_truncated": False,
                "eose_received": True,
                "bytes_received": 100,
                "error_class": None,
            }
            for relay in RELAYS
        ]
        for _ in range(2):
            land_window(
                conn,
                start,
                start + HOUR,
                event_rows(events, seen),
                sighting_rows(pairs, created),
                stats,
            )


def contents(conn: duckdb.DuckDBPyConnection) -> tuple[list, list, list]:
    return (
        conn.execute("select * from raw.nostr_events order by event_id").fetchall(),
        conn.execute("select * from raw.event_relay_sightings order by all").fetchall(),
        conn.execute("select * from raw.relay_fetch_stats order by all").fetchall(),
    )


@pytest.fixture(scope="module")
def one_writer_file(tmp_path_factory) -> tuple[list, list, list]:
    """What one writer leaves in a DuckDB file after landing every hour."""
    path = tmp_path_factory.mktemp("file") / "one.duckdb"
    with duckdb.connect(str(path)) as conn:
        ensure_raw_tables(conn)
        land_hours(conn, list(range(WINDOWS)))
        return contents(conn)


def land_in_parallel(catalog: str, data_path: str, writers: int = 3) -> int:
    """``writers`` processes land the hours (every writer-th one each) at once; returns the
    conflicts they retried."""
    paths = json.dumps([str(Path(__file__).parent), *sys.path])
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                json.dumps(
                    {
                        "catalog": catalog,
                        "data_path": data_path,
                        "hours": list(range(WINDOWS))[i::writers],
                    }
                ),
                paths,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    retried = 0
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        retried += int(out.strip().splitlines()[-1])
    return retried


@pytest.mark.slow
def test_writers_at_once_on_a_sqlite_catalog_leave_what_one_writer_leaves(
    tmp_path, one_writer_file
):
    catalog, data = f"sqlite:{tmp_path / 'catalog.sqlite'}", f"{tmp_path / 'files'}/"
    land_in_parallel(catalog, data)
    conn = connect_lake(catalog, data, read_only=True)
    try:
        assert contents(conn) == one_writer_file
    finally:
        conn.close()
    db = sqlite3.connect(tmp_path / "catalog.sqlite")
    assert db.execute("pragma journal_mode").fetchone() == ("wal",)
    db.close()


@pytest.mark.slow
def test_writers_at_once_on_a_postgres_catalog_leave_what_one_writer_leaves(
    tmp_path, postgres_server, one_writer_file
):
    catalog = postgres_server.catalog(postgres_server.create_database())
    data = f"{tmp_path / 'files'}/"
    land_in_parallel(catalog, data)
    conn = connect_lake(catalog, data, read_only=True)
    try:
        assert contents(conn) == one_writer_file
    finally:
        conn.close()


@pytest.fixture
def two_writers(tmp_path):
    """Two connections to one SQLite-catalog lake, as two processes would hold them."""
    catalog, data = f"sqlite:{tmp_path / 'catalog.sqlite'}", f"{tmp_path / 'files'}/"
    first = connect_lake(catalog, data)
    first.execute("create table hours (hour integer, writer varchar)")
    second = connect_lake(catalog, data)
    yield first, second
    first.close()
    second.close()


def test_a_transaction_that_loses_to_another_writer_is_run_again(two_writers):
    mine, other = two_writers
    attempts = []
    before = conflicts_retried()

    def body() -> int:
        attempts.append(1)
        mine.execute("insert into hours values (1, 'mine')")
        if len(attempts) == 1:
            # Another writer commits after this transaction read the catalog: SQLite refuses
            # this one's commit, as it would between two processes.
            other.execute("insert into hours values (2, 'other')")
        return len(attempts)

    assert in_transaction(mine, body) == 2
    assert conflicts_retried() == before + 1
    rows = mine.execute("select * from hours order by hour").fetchall()
    assert rows == [(1, "mine"), (2, "other")]  # both kept, the first attempt's row once


def test_a_transaction_that_always_loses_fails_with_the_reason_and_keeps_nothing(
    two_writers, monkeypatch
):
    mine, other = two_writers
    monkeypatch.setattr(raw_table, "CONFLICT_ATTEMPTS", 3)
    monkeypatch.setattr(raw_table, "FIRST_CONFLICT_DELAY_S", 0.001)

    def body() -> None:
        mine.execute("insert into hours values (1, 'mine')")
        other.execute("insert into hours values (2, 'other')")

    with pytest.raises(WriterConflict, match=r"(?s)gave up after 3 attempts.*database is locked"):
        in_transaction(mine, body)
    assert mine.execute("select writer, count(*) from hours group by all").fetchall() == [
        ("other", 3)
    ]


def test_only_conflicts_are_run_again(two_writers):
    mine, _ = two_writers
    attempts = []

    def body() -> None:
        attempts.append(1)
        mine.execute("insert into hours values ('not a number', 'mine')")

    with pytest.raises(duckdb.ConversionException) as refused:
        in_transaction(mine, body)
    assert not is_conflict(refused.value)
    assert len(attempts) == 1
    assert mine.execute("select count(*) from hours").fetchone() == (0,)


def test_a_merge_prepared_before_another_writer_landed_is_merged_again(tmp_path, monkeypatch):
    """Writer A prepares its merge of an hour outside the transaction; writer B lands the same
    hour (other relays' sightings, earlier first_seen_at) before A writes. A must see that the
    stored slice changed and merge again, so B's rows survive, as one writer landing both
    crawls in turn would leave them."""
    catalog, data = f"sqlite:{tmp_path / 'catalog.sqlite'}", f"{tmp_path / 'files'}/"
    mine, other = connect_lake(catalog, data), connect_lake(catalog, data)
    ensure_raw_tables(mine)
    events = hour_events(0)
    created = {e.id: e.created_at for e in events}

    def rows(relay: str, delay: float):
        seen = {e.id: e.created_at + delay for e in events}
        pairs = [(e.id, relay, e.created_at + delay) for e in events]
        return event_rows(events, seen), sighting_rows(pairs, created)

    prepare = event_landing._prepare_merge
    interleaved = []

    def prepare_then_let_the_other_land(conn, window, in_slice):
        prepare(conn, window, in_slice)
        if conn is mine and not interleaved:
            interleaved.append(1)
            land_window(other, FIRST, FIRST + HOUR, *rows("wss://b.example", 1.0))

    monkeypatch.setattr(event_landing, "_prepare_merge", prepare_then_let_the_other_land)
    land_window(mine, FIRST, FIRST + HOUR, *rows("wss://a.example", 9.0))
    assert interleaved
    both = contents(mine)
    mine.close()
    other.close()

    with duckdb.connect(str(tmp_path / "file.duckdb")) as file:
        ensure_raw_tables(file)
        land_window(file, FIRST, FIRST + HOUR, *rows("wss://b.example", 1.0))
        land_window(file, FIRST, FIRST + HOUR, *rows("wss://a.example", 9.0))
        assert both == contents(file)
    assert len(both[1]) == 2 * len(events)  # sightings from both writers
    assert {row[-1] for row in both[0]} == {2}  # relay_count
