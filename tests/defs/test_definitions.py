"""The code location as a whole: keys, partitions, backfill policies, automation, warnings.

Protects the contract users see in the UI and CLI: keys mirror DuckDB schema/table, every
hourly asset is a single-run backfill, sensors start running, and our code raises no
deprecation warnings under Dagster 1.13 / dagster-dbt 0.29.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from nostr_assets.defs import automation
from nostr_assets.defs.partitions import hourly_partitions
from nostr_assets.defs.resources import RelaySourcesResource, WarehouseResource
from nostr_assets.lib.protocol.event import sign_event
from nostr_assets.lib.warehouse.event_landing import land_window
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.lib.warehouse.tables.event_relay_sightings import sighting_rows
from nostr_assets.lib.warehouse.tables.nostr_events import event_rows

RAW_HOURLY = [
    "relay_snapshots",
    "relay_geolocations",
    "nostr_events",
    "event_relay_sightings",
    "relay_fetch_stats",
]


@pytest.fixture(scope="module")
def defs():
    from nostr_assets.definitions import defs as load_definitions

    return load_definitions()


def test_asset_keys_partitions_and_backfill_policies(defs):
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {f"raw/{name}" for name in RAW_HOURLY} | {"raw/relay_catalog"} <= keys
    assert {"geoip/city_database", "geoip/asn_database"} <= keys
    assert {"marts/fct_events_hourly", "marts/dim_relays", "staging/stg_nostr__events"} <= keys
    for name in [*RAW_HOURLY, "marts/fct_events_hourly"]:
        key = dg.AssetKey.from_user_string(name if "/" in name else f"raw/{name}")
        node = graph.get(key)
        assert node.partitions_def == hourly_partitions, name
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), name
        assert node.freshness_policy is not None, name
    assert graph.get(dg.AssetKey(["raw", "relay_catalog"])).partitions_def is None
    # dbt sources are the Python assets themselves: no dangling external raw nodes.
    externals = {
        k.to_user_string() for k in graph.get_all_asset_keys() if not graph.get(k).is_materializable
    }
    assert externals == {"geoip/city_database", "geoip/asn_database"}
    # the mmdb files show in the geolocation's lineage
    parents = graph.get(dg.AssetKey(["raw", "relay_geolocations"])).parent_keys
    assert dg.AssetKey(["geoip", "city_database"]) in parents


def test_no_phantom_assets_and_hours_map_one_to_one(defs):
    """Every key is `layer/name` in a group (dbt tests that span models made bare keys such as
    `fct_relay_coverage`), and the staging views over hourly raw tables are hourly like them,
    so a range backfill and automation carry an hour from raw table to mart."""
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert len(key.path) == 2, key
        assert graph.get(key).group_name not in (None, "default"), key
    for name in RAW_HOURLY:
        staging = dg.AssetKey(["staging", f"stg_nostr__{name.replace('nostr_', '')}"])
        assert graph.get(staging).partitions_def == hourly_partitions, staging
        assert dg.AssetKey(["raw", name]) in graph.get(staging).parent_keys
    catalog_view = graph.get(dg.AssetKey(["staging", "stg_nostr__relay_catalog"]))
    assert catalog_view.partitions_def is None


def test_sensors_and_schedule_run_by_default(defs):
    for name in ("late_events_sensor", "relay_discovery_sensor", "automation_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    schedule = defs.resolve_schedule_def("hourly_raw_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


@pytest.mark.slow
def test_no_deprecation_warning_from_our_code():
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "import nostr_assets.definitions as d\n"
        "defs = d.defs(); defs.resolve_asset_graph(); defs.resolve_all_job_defs()\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    ours = [
        line for line in run.stderr.splitlines() if "Warning" in line and "nostr_assets" in line
    ]
    assert ours == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["dagster", "definitions", "validate", "-m", "nostr_assets.definitions"],
        ["dg", "check", "defs"],
    ],
)
def test_the_command_lines_load_the_location_without_a_warning(command):
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env["VIRTUAL_ENV"] = str(bin_dir.parent)  # dg finds the project's Python through it
    run = subprocess.run(
        [str(bin_dir / command[0]), *command[1:]],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "WARNING" not in output, output


def test_schedule_requests_the_hour_just_closed(defs):
    schedule = defs.resolve_schedule_def("hourly_raw_schedule")
    tick = datetime(2024, 3, 5, 14, 10, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=tick,
            repository_def=defs.get_repository_def(),
        )
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2024-03-05-13:00"] * 2
    # events apart from snapshots: a failed fetch must not stop the snapshot of the outage
    selections = [{k.to_user_string() for k in r.asset_selection} for r in requests]
    assert selections == [
        {"raw/nostr_events", "raw/event_relay_sightings", "raw/relay_fetch_stats"},
        {"raw/relay_snapshots", "raw/relay_geolocations"},
    ]


def sensor_context(database, **sources) -> dg.SensorEvaluationContext:
    return dg.build_sensor_context(
        resources={
            "duckdb": WarehouseResource(database=str(database)),
            "relay_sources": RelaySourcesResource(**sources),
        }
    )


def test_late_events_sensor_refetches_48_hours_back(tmp_path):
    database = tmp_path / "nostr.duckdb"
    context = sensor_context(database)
    skipped = automation.late_events_sensor(context)
    assert isinstance(skipped, dg.SkipReason) and "catalog is empty" in skipped.skip_message
    with duckdb.connect(str(database)) as conn:
        ensure_raw_tables(conn)
        conn.execute(
            "insert into raw.relay_catalog values ('wss://relay.example.com', "
            "'bootstrap', now(), now(), false, null)"
        )
    request = automation.late_events_sensor(context)
    expected = automation.late_partition_key(datetime.now(UTC))
    assert request.partition_key == expected
    assert request.run_key == f"late-events-{expected}"
    hour = datetime.strptime(expected, "%Y-%m-%d-%H:%M").replace(tzinfo=UTC)
    age = datetime.now(UTC) - hour
    assert 48 * 3600 <= age.total_seconds() < 49 * 3600


def test_relay_discovery_sensor_requests_catalog_for_new_relays(tmp_path):
    database = tmp_path / "nostr.duckdb"
    relay_list = sign_event(
        b"\x01" * 32,
        1_704_067_200,
        10002,
        [["r", "wss://relay.example.com/"], ["r", "wss://known.example.org"]],
        "",
    )
    hour = datetime(2024, 1, 1, tzinfo=UTC)
    with duckdb.connect(str(database)) as conn:
        ensure_raw_tables(conn)
        events = event_rows([relay_list], {relay_list.id: 1_704_067_300.0})
        land_window(conn, hour, hour.replace(hour=1), events, sighting_rows([], {}))
        conn.execute(
            "insert into raw.relay_catalog values ('wss://known.example.org', "
            "'bootstrap', now(), now(), false, null)"
        )
    result = automation.relay_discovery_sensor(sensor_context(database))
    assert isinstance(result, dg.RunRequest)
    with duckdb.connect(str(database)) as conn:
        conn.execute(
            "insert into raw.relay_catalog values ('wss://relay.example.com', "
            "'nip65', now(), now(), false, null)"
        )
    again = automation.relay_discovery_sensor(sensor_context(database))
    assert isinstance(again, dg.SkipReason)
