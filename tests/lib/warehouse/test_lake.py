"""Protects the warehouse on DuckLake (a SQLite catalog, Parquet files in a temporary folder):
the raw tables are created there as in the file, only without the primary keys DuckLake
refuses; a window landed twice leaves exactly the rows the DuckDB file holds; a repeated key,
which no constraint catches on the lake, is refused by landing and rolled back; the relay
catalog's upsert keeps first_seen_at; the resource attaches the lake from its settings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest
from relays import BASE_HOUR, SECRET_KEYS

from nostr_assets.defs.resources.warehouse import WarehouseResource
from nostr_assets.lib.protocol.event import sign_event
from nostr_assets.lib.warehouse.event_landing import land_window
from nostr_assets.lib.warehouse.lake import attach_sql, connect_lake, is_lake, lake_extensions
from nostr_assets.lib.warehouse.landing import replace_window
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.lib.warehouse.tables import RAW_TABLES
from nostr_assets.lib.warehouse.tables.event_relay_sightings import sighting_rows
from nostr_assets.lib.warehouse.tables.nostr_events import event_rows
from nostr_assets.lib.warehouse.tables.relay_catalog import upsert_catalog

HOUR = datetime.fromtimestamp(BASE_HOUR, UTC)
END = HOUR + timedelta(hours=1)
EVENTS = [
    sign_event(SECRET_KEYS[i % 4], BASE_HOUR + 60 * i, 1, [], f"n{i}", bytes(32)) for i in range(12)
]


@pytest.fixture
def lake(tmp_path):
    catalog, data = f"sqlite:{tmp_path / 'catalog.sqlite'}", f"{tmp_path / 'files'}/"
    conn = connect_lake(catalog, data)
    yield conn
    conn.close()


def window_rows(seen: dict[str, float], relay: str):
    events = [e for e in EVENTS if e.id in seen]
    created = {e.id: e.created_at for e in EVENTS}
    pairs = [(event_id, relay, at) for event_id, at in seen.items()]
    return event_rows(events, seen), sighting_rows(pairs, created)


def stats_rows(relays: list[str]) -> list[dict]:
    return [
        {
            "created_hour": HOUR,
            "relay_url": relay,
            "fetched_at": END,
            "events": 8,
            "duplicates": 0,
            "invalid_ids": 0,
            "invalid_signatures": 0,
            "invalid_other": 0,
            "bad_frames": 0,
            "stray_events": 0,
            "pages": 1,
            "possibly_truncated": False,
            "eose_received": True,
            "closed_prefix": None,
            "bytes_received": 1000,
            "time_to_open_ms": 1.5,
            "time_to_first_event_ms": 2.5,
            "error_class": None,
        }
        for relay in relays
    ]


def land_twice(conn: duckdb.DuckDBPyConnection) -> tuple[list, list, list]:
    ensure_raw_tables(conn)
    first = {e.id: BASE_HOUR + 100.0 + i for i, e in enumerate(EVENTS[:8])}
    second = {e.id: BASE_HOUR + 50.0 + i for i, e in enumerate(EVENTS[4:])}
    stats = stats_rows(["wss://a.example", "wss://b.example"])
    for _ in range(2):  # the same two crawls landed again: nothing changes
        for seen, relay in ((first, "wss://a.example"), (second, "wss://b.example")):
            events, sightings = window_rows(seen, relay)
            land_window(conn, HOUR, END, events, sightings, stats)
    return (
        conn.execute("select * from raw.nostr_events order by event_id").fetchall(),
        conn.execute("select * from raw.event_relay_sightings order by all").fetchall(),
        conn.execute("select * from raw.relay_fetch_stats order by all").fetchall(),
    )


def test_the_lake_needs_the_extensions_of_its_catalog_and_storage():
    assert lake_extensions("sqlite:/x", "/data/") == ["ducklake", "sqlite_scanner"]
    assert lake_extensions("postgres:dbname=x", "s3://b/p/") == [
        "ducklake",
        "postgres_scanner",
        "httpfs",
    ]
    assert attach_sql("sqlite:/it's", "/d/", read_only=True) == (
        "attach if not exists 'ducklake:sqlite:/it''s' as lake (data_path '/d/', read_only)"
    )


def test_raw_tables_on_the_lake_are_the_files_without_keys(lake, tmp_path):
    assert is_lake(lake)
    assert ensure_raw_tables(lake) == []
    assert ensure_raw_tables(lake) == []  # checked again: up to date, nothing refused
    with duckdb.connect(str(tmp_path / "file.duckdb")) as file:
        assert not is_lake(file)
        ensure_raw_tables(file)
        shape = "select table_name, column_name, data_type, is_nullable from duckdb_columns() "
        shape += "where schema_name = 'raw' and database_name = current_database() order by all"
        assert lake.execute(shape).fetchall() == file.execute(shape).fetchall()
    keys = lake.execute(
        "select count(*) from duckdb_constraints() where database_name = 'lake' "
        "and constraint_type in ('PRIMARY KEY', 'UNIQUE')"
    ).fetchone()
    assert keys == (0,)
    assert {name for (name,) in lake.execute("show tables from raw").fetchall()} == set(RAW_TABLES)


def test_a_window_landed_twice_on_the_lake_equals_the_file(lake, tmp_path):
    on_lake = land_twice(lake)
    with duckdb.connect(str(tmp_path / "file.duckdb")) as file:
        on_file = land_twice(file)
    assert on_lake == on_file
    events, sightings, stats = on_lake
    assert len(events) == 12 and len(sightings) == 16 and len(stats) == 2
    assert sorted(row[-1] for row in events) == [1] * 8 + [2] * 4  # relay_count
    files = list((tmp_path / "files").rglob("*.parquet"))
    assert files, "the lake keeps its rows as Parquet files in the data path"


def test_a_repeated_key_is_refused_on_the_lake_and_rolled_back(lake):
    ensure_raw_tables(lake)
    replace_window(lake, "relay_fetch_stats", "created_hour", HOUR, END, stats_rows(["wss://a"]))
    twice = stats_rows(["wss://b", "wss://b"])
    with pytest.raises(duckdb.ConstraintException, match=r"Duplicate key.*wss://b"):
        replace_window(lake, "relay_fetch_stats", "created_hour", HOUR, END, twice)
    kept = lake.execute("select relay_url from raw.relay_fetch_stats").fetchall()
    assert kept == [("wss://a",)]


def test_the_catalog_upsert_keeps_first_seen_on_the_lake(lake):
    ensure_raw_tables(lake)
    first, later = HOUR, END
    for now, guarded in ((first, False), (later, True)):
        incoming = pa.table(
            {
                "relay_url": ["wss://a.example"],
                "source": ["bootstrap" if now == first else "nip65"],
                "is_guarded": [guarded],
                "guard_reason": ["private" if guarded else None],
            }
        )
        lake.register("incoming", incoming)
        upsert_catalog(lake, now)
        lake.unregister("incoming")
    row = lake.execute(
        "select source, first_seen_at, last_seen_at, is_guarded, guard_reason "
        "from raw.relay_catalog"
    ).fetchall()
    assert row == [("bootstrap", first, later, True, "private")]


def test_the_resource_attaches_the_lake_from_its_settings(tmp_path):
    resource = WarehouseResource(
        database=str(tmp_path / "unused.duckdb"),
        warehouse="ducklake",
        ducklake_catalog=f"sqlite:{tmp_path / 'new' / 'catalog.sqlite'}",
        ducklake_data_path=f"{tmp_path / 'files'}/",
    )
    assert not resource.exists()
    with resource.get_connection() as conn:
        assert conn.execute("select current_database()").fetchone() == ("lake",)
        assert conn.execute("select count(*) from raw.nostr_events").fetchone() == (0,)
    assert resource.exists()
    with (
        resource.get_connection(read_only=True) as conn,
        pytest.raises(duckdb.Error, match="read-only"),
    ):
        conn.execute("delete from raw.nostr_events")
    assert not (tmp_path / "unused.duckdb").exists()
