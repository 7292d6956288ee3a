"""The pipeline on DuckLake (NOSTR_WAREHOUSE=ducklake, a SQLite catalog and a data folder in a
temporary directory), through Dagster with real parts: the resources `build_resources` makes
from the settings, an hour crawled from a real relay (PyPI nostr-relay) and landed in the lake
by raw/nostr_events, every dbt model and the dashboard built on the lake, and two sensors that
read the lake read-only.

Protects: NostrDbtResource hands dbt the lake of the settings, whatever the process
environment says, and installs the extensions the profile names from their wheels (dbt here
starts with an empty DuckDB extension folder and no internet); the dbt models' numbers on the
lake are the crawled events' own; dbt's tests arrive as passing checks and row counts are read
through the lake; the dashboard finds every mart there; nothing is written to a DuckDB file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from relays import BASE_HOUR, HOUR, SECRET_KEYS, make_events, start_relay

from nostr_assets.defs import automation
from nostr_assets.defs.resources import build_resources
from nostr_assets.lib.protocol.event import Event, sign_event
from nostr_assets.lib.warehouse.lake import connect_lake
from nostr_assets.settings import Settings, load_settings

pytestmark = pytest.mark.integration

HOUR_KEY = datetime.fromtimestamp(BASE_HOUR, UTC).strftime("%Y-%m-%d-%H:%M")
EVENT_TABLES = dg.AssetSelection.assets(["raw", "nostr_events"]).required_multi_asset_neighbors()
# Every dbt model (the hourly ones for the hour, the others in full), then the dashboard.
MODELS_AND_DASHBOARD = dg.AssetSelection.groups(
    "staging", "intermediate", "marts"
) | dg.AssetSelection.assets(["reports", "network_dashboard"])
# A relay named by a NIP-65 list in the crawled hour: the discovery sensor must find it.
LISTED_RELAY = "wss://relay.example.com"


def hour_events() -> list[Event]:
    """The relay's events of the hour (and one at the next hour's first second, not fetched)."""
    relay_list = sign_event(
        SECRET_KEYS[0], BASE_HOUR + 600, 10002, [["r", LISTED_RELAY]], "", bytes(32)
    )
    return [*make_events(hours=1, per_hour=12, burst=6), relay_list]


@dataclass
class Pipeline:
    settings: Settings
    resources: dict
    events: list[Event]  # the events of the hour, as the relay holds them
    results: list[dg.ExecuteInProcessResult]
    wrong: list[Path]  # what the process environment named instead: must never appear


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    root = tmp_path_factory.mktemp("lake_pipeline")
    events = hour_events()
    relay = start_relay(root / "relay", events)
    (root / "relays.txt").write_text("")
    settings = load_settings(
        {
            "NOSTR_WAREHOUSE": "ducklake",
            "NOSTR_DUCKLAKE_CATALOG": f"sqlite:{root / 'lake' / 'catalog.sqlite'}",
            "NOSTR_DUCKLAKE_DATA_PATH": str(root / "lake" / "files"),
            "NOSTR_DUCKDB_PATH": str(root / "unused.duckdb"),
            "NOSTR_RELAYS": relay.url,
            "NOSTR_RELAYS_FILE": str(root / "relays.txt"),
            "NOSTR_ALLOW_PRIVATE_ADDRESSES": "true",
            # nostr-relay caps a REQ at 50 here; no page is taken as short by its size alone.
            "NOSTR_MIN_RELAY_CAP": "1",
            "NOSTR_CONNECT_TIMEOUT": "3",
            "NOSTR_IDLE_TIMEOUT": "5",
            "NOSTR_DASHBOARD_PATH": str(root / "network.html"),
            "NOSTR_PARTITIONS_START": "2024-01-01-00:00",
        }
    )
    resources = build_resources(settings)
    wrong = [root / "wrong.duckdb", root / "wrong" / "catalog.sqlite"]
    try:
        with pytest.MonkeyPatch.context() as mp:
            # What dbt would read if the resource did not say: the DuckDB file, elsewhere.
            mp.setenv("NOSTR_WAREHOUSE", "duckdb")
            mp.setenv("NOSTR_DUCKDB_PATH", str(wrong[0]))
            mp.setenv("NOSTR_DUCKLAKE_CATALOG", f"sqlite:{wrong[1]}")
            from nostr_assets.definitions import defs as load_definitions

            assets: list[Any] = list(load_definitions().assets or [])

            def run(selection, partition_key=None):
                return dg.materialize(
                    assets, selection=selection, partition_key=partition_key, resources=resources
                )

            results = [run("raw/relay_catalog"), run(EVENT_TABLES, HOUR_KEY)]
            relay.stop()  # the hour has landed: nothing below reads the relay
            # dbt's process finds no extension installed (a new DuckDB extension folder, and
            # no internet to download one): only the resource's install from the wheels.
            (root / "home").mkdir()
            mp.setenv("HOME", str(root / "home"))
            results.append(run(MODELS_AND_DASHBOARD, HOUR_KEY))
    finally:
        relay.stop()
    in_hour = [e for e in events if BASE_HOUR <= e.created_at < BASE_HOUR + HOUR]
    return Pipeline(settings, resources, in_hour, results, wrong)


def lake_query(settings: Settings, sql: str) -> list[tuple]:
    conn = connect_lake(settings.ducklake_catalog, settings.ducklake_data_path, read_only=True)
    try:
        conn.execute("set TimeZone = 'UTC'")
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetMaterialization]:
    return {
        m.asset_key.to_user_string(): m
        for event in result.get_asset_materialization_events()
        if (m := event.materialization) is not None
    }


def test_every_run_succeeds_and_nothing_goes_to_a_duckdb_file(pipeline):
    assert [r.success for r in pipeline.results] == [True, True, True]
    assert not pipeline.settings.duckdb_path.exists()
    assert not any(path.exists() for path in pipeline.wrong)
    assert list((Path(pipeline.settings.ducklake_data_path) / "raw").rglob("*.parquet"))


def test_the_crawled_hour_is_in_the_lake(pipeline):
    stored = lake_query(pipeline.settings, "select event_id from raw.nostr_events")
    assert {i for (i,) in stored} == {e.id for e in pipeline.events}


def test_the_marts_on_the_lake_count_the_crawled_events(pipeline):
    hour = datetime.fromtimestamp(BASE_HOUR, UTC)
    kinds = Counter(e.kind for e in pipeline.events)
    authors = {k: len({e.pubkey for e in pipeline.events if e.kind == k}) for k in kinds}
    assert lake_query(
        pipeline.settings,
        "select event_hour, kind, events, distinct_authors from fct_events_hourly order by kind",
    ) == [(hour, k, kinds[k], authors[k]) for k in sorted(kinds)]
    # One relay holds every event: the replication histogram is one bar.
    assert lake_query(pipeline.settings, "select * from fct_event_replication") == [
        (1, len(pipeline.events))
    ]
    # dagster-dbt counted the rows through dbt's adapter, on the lake.
    built = materializations(pipeline.results[2])
    assert built["marts/fct_events_hourly"].metadata["dagster/row_count"].value == len(kinds)
    assert built["intermediate/int_events_deduplicated"].metadata["dagster/row_count"].value == len(
        pipeline.events
    )


def test_dbt_tests_pass_as_asset_checks_on_the_lake(pipeline):
    checks = pipeline.results[2].get_asset_check_evaluations()
    assert len(checks) > 50
    assert [c.check_name for c in checks if not c.passed] == []


def test_the_dashboard_reads_every_mart_from_the_lake(pipeline):
    page = materializations(pipeline.results[2])["reports/network_dashboard"].metadata
    assert page["missing_marts"].value == "none"
    assert page["latest_hour"].value == datetime.fromtimestamp(BASE_HOUR, UTC).isoformat()
    assert page["events_24h"].value == len(pipeline.events)
    assert Path(pipeline.settings.dashboard_path).stat().st_size > 10_000


def test_sensors_read_the_lake(pipeline):
    context = dg.build_sensor_context(resources=pipeline.resources)
    # The relay list landed in the hour names a relay the catalog does not know yet.
    discovery = automation.relay_discovery_sensor(context)
    assert isinstance(discovery, dg.RunRequest), discovery
    assert discovery.run_key == f"discovered-1-{LISTED_RELAY}"
    late = automation.late_events_sensor(dg.build_sensor_context(resources=pipeline.resources))
    assert isinstance(late, dg.RunRequest), late
    # Readers open the lake read-only: a write through them is refused.
    with (
        pipeline.resources["duckdb"].get_connection(read_only=True) as conn,
        pytest.raises(duckdb.Error, match="read-only"),
    ):
        conn.execute("delete from raw.relay_catalog")
