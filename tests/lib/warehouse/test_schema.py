"""Protects the start-up schema check: a warehouse made by an older version is upgraded in
place and loses nothing; a difference that would lose data is refused, naming each one, and
nothing is changed; every table module is a table DuckDB accepts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import yaml

from nostr_assets.lib.network.probe import RelayProbe
from nostr_assets.lib.protocol.nip11 import Nip11Info
from nostr_assets.lib.protocol.nip66 import MonitorReport
from nostr_assets.lib.warehouse.landing import replace_window
from nostr_assets.lib.warehouse.raw_table import RawTable, SchemaMismatch, plan_upgrade
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.lib.warehouse.tables import RAW_TABLES
from nostr_assets.lib.warehouse.tables.relay_snapshots import snapshot_row

HOUR = datetime(2026, 11, 30, 12, tzinfo=UTC)
SOURCES = Path(__file__).resolve().parents[3] / "dbt_project/models/staging/_nostr__sources.yml"

# raw.relay_snapshots as the first release wrote it, before NIP-66 rows existed: today's
# columns without observation_source and monitor_pubkey.
RELAY_SNAPSHOTS_V1 = "\n".join(
    line
    for line in RAW_TABLES["relay_snapshots"].columns.splitlines()
    if line.split()[:1] not in (["observation_source"], ["monitor_pubkey"])
)


def columns(conn, table: str) -> dict[str, tuple[str, bool]]:
    rows = conn.execute(
        "select column_name, data_type, is_nullable from duckdb_columns() "
        "where schema_name = 'raw' and table_name = $1",
        [table],
    ).fetchall()
    return {name: (type_, nullable) for name, type_, nullable in rows}


@pytest.fixture
def conn(tmp_path):
    with duckdb.connect(str(tmp_path / "old.duckdb")) as connection:
        yield connection


def old_warehouse(conn, snapshots_ddl: str = RELAY_SNAPSHOTS_V1) -> list[tuple]:
    """A warehouse whose relay_snapshots is the first release's, holding 3 probe rows."""
    conn.execute("create schema raw")
    conn.execute(f"create table raw.relay_snapshots ({snapshots_ddl})")
    for i, url in enumerate(["wss://a.example", "wss://b.example", "wss://c.example"]):
        conn.execute(
            "insert into raw.relay_snapshots (snapshot_hour, relay_url, observed_at, "
            "is_reachable, rtt_open_ms, supported_nips, relay_name) "
            "values ($1, $2, $3, $4, $5, $6, $7)",
            [HOUR, url, HOUR + timedelta(minutes=5), i != 1, 40.0 + i, [1, 11], f"relay {i}"],
        )
    return conn.execute("select * from raw.relay_snapshots order by relay_url").fetchall()


def test_every_table_module_is_a_table_duckdb_accepts(conn):
    assert ensure_raw_tables(conn) == []  # a new warehouse: created, nothing to upgrade
    for name, table in RAW_TABLES.items():
        assert tuple(columns(conn, name)) == table.column_names, name
    assert ensure_raw_tables(conn) == []  # and a second start-up finds it up to date


def test_an_old_warehouse_is_upgraded_and_loses_nothing(conn):
    before = old_warehouse(conn)
    upgrades = ensure_raw_tables(conn)
    assert upgrades == [
        "alter table raw.relay_snapshots add column observation_source VARCHAR default 'probe'",
        "alter table raw.relay_snapshots alter column observation_source set not null",
        "alter table raw.relay_snapshots add column monitor_pubkey VARCHAR",
    ]
    assert columns(conn, "relay_snapshots")["observation_source"] == ("VARCHAR", False)
    # Every stored value is still there; the rows an old version probed are probe rows.
    after = conn.execute(
        "select * exclude (observation_source, monitor_pubkey) from raw.relay_snapshots "
        "order by relay_url"
    ).fetchall()
    assert after == before
    sources = conn.execute(
        "select distinct observation_source, monitor_pubkey from raw.relay_snapshots"
    )
    assert sources.fetchall() == [("probe", None)]
    # The tables that did not exist then exist now.
    assert set(RAW_TABLES) <= {
        name for (name,) in conn.execute("select table_name from duckdb_tables()").fetchall()
    }
    # And the new columns take rows: a NIP-66 row of the next hour lands with its monitor.
    report = MonitorReport(
        relay_url="wss://a.example",
        monitor_pubkey="ab" * 32,
        event_id="cd" * 32,
        observed_at=int((HOUR + timedelta(hours=1, minutes=3)).timestamp()),
        rtt_open_ms=12.0,
        info=Nip11Info(name="A", supported_nips=[1, 66]),
    )
    next_hour = HOUR + timedelta(hours=1)
    rows = [snapshot_row(next_hour, report)]
    replace_window(
        conn, "relay_snapshots", "snapshot_hour", next_hour, next_hour + timedelta(hours=1), rows
    )
    landed = conn.execute(
        "select observation_source, monitor_pubkey, relay_name, supported_nips, is_reachable "
        "from raw.relay_snapshots where snapshot_hour = $1",
        [next_hour],
    ).fetchall()
    assert landed == [("nip66", "ab" * 32, "A", [1, 66], True)]
    assert conn.execute("select count(*) from raw.relay_snapshots").fetchone()[0] == 4


def test_a_lossless_widening_is_made_in_place(conn):
    old_warehouse(
        conn, RELAY_SNAPSHOTS_V1.replace("max_limit            bigint", "max_limit integer")
    )
    conn.execute("update raw.relay_snapshots set max_limit = 5000")
    assert (
        "alter table raw.relay_snapshots alter column max_limit type BIGINT"
        in ensure_raw_tables(conn)
    )
    assert columns(conn, "relay_snapshots")["max_limit"] == ("BIGINT", True)
    assert conn.execute("select distinct max_limit from raw.relay_snapshots").fetchall() == [
        (5000,)
    ]


def test_lossy_differences_are_refused_each_named_and_nothing_changes(conn):
    ddl = (
        RELAY_SNAPSHOTS_V1.replace("rtt_open_ms          double", "rtt_open_ms varchar")
        .replace("max_limit            bigint", "max_limit hugeint")
        .replace("restricted_writes    boolean,", "restricted_writes boolean, legacy_flag boolean,")
    )
    before = old_warehouse(conn, ddl)
    with pytest.raises(SchemaMismatch) as refused:
        ensure_raw_tables(conn)
    problems = refused.value.problems
    assert len(problems) == 3, problems
    assert any(
        "raw.relay_snapshots.legacy_flag: in the warehouse but unknown" in p for p in problems
    )
    assert any(
        "rtt_open_ms: VARCHAR in the warehouse, DOUBLE in this version" in p for p in problems
    )
    assert any("max_limit: HUGEINT in the warehouse, BIGINT" in p for p in problems)
    assert "nothing was changed" in str(refused.value)
    # Nothing changed: no column added, no other table created.
    assert "observation_source" not in columns(conn, "relay_snapshots")
    assert conn.execute("select * from raw.relay_snapshots order by relay_url").fetchall() == before
    tables = conn.execute("select table_name from duckdb_tables()").fetchall()
    assert tables == [("relay_snapshots",)]


def test_a_changed_key_or_a_new_required_column_is_refused(conn):
    conn.execute("create schema raw")
    conn.execute("create table raw.t (a integer primary key, b varchar)")
    conn.execute("insert into raw.t values (1, null)")
    declared = RawTable(
        name="t",
        grain="test",
        columns="a integer, b varchar not null, c integer not null, primary key (a, b)",
    )
    statements, problems = plan_upgrade(conn, declared)
    assert statements == []
    assert sorted(problems) == [
        "raw.t.b: NOT NULL in this version, but 1 stored row(s) have no value",
        "raw.t.c: new, NOT NULL and without a default, so the rows already stored would have "
        "no value",
        "raw.t: primary key is (a) in the warehouse, (a, b) in this version",
    ]


def test_one_builder_for_probe_and_monitor_rows():
    probe = RelayProbe(
        relay_url="wss://a.example",
        observed_at=HOUR.timestamp() + 60,
        dns_addresses=["203.0.113.5"],
        connected_ip="203.0.113.5",
        reachable=False,
        error_class="timeout",
        error_message="x" * 2000,
        rtt_open_ms=None,
    )
    row = snapshot_row(HOUR, probe)
    assert tuple(row) == RAW_TABLES["relay_snapshots"].column_names
    assert row["observation_source"] == "probe" and row["monitor_pubkey"] is None
    assert row["is_reachable"] is False and row["dns_addresses"] == ["203.0.113.5"]
    assert len(row["error_message"]) == 500  # a stranger's text, bounded
    assert row["relay_name"] is None and row["observed_at"] == HOUR + timedelta(minutes=1)
    report = MonitorReport("wss://a.example", "ab" * 32, "cd" * 32, int(HOUR.timestamp()))
    row = snapshot_row(HOUR, report)
    assert tuple(row) == RAW_TABLES["relay_snapshots"].column_names
    # What only our own probe can know stays unknown, never invented.
    assert row["connected_ip"] is None and row["dns_addresses"] is None
    assert row["observation_source"] == "nip66" and row["is_reachable"] is True


def test_every_raw_table_is_a_dbt_source_and_every_source_a_raw_table():
    sources = yaml.safe_load(SOURCES.read_text())["sources"]
    [raw] = [source for source in sources if source["name"] == "raw"]
    declared = {table["name"]: table.get("config", {}) for table in raw["tables"]}
    assert set(declared) == set(RAW_TABLES)
    for name, table in RAW_TABLES.items():
        # dbt's sample and microbatch windows follow the partition column the code lands by.
        assert declared[name].get("event_time") == table.time_column, name
        assert declared[name]["loaded_at_field"] in table.column_names, name
