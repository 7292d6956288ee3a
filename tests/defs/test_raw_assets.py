"""The raw Dagster assets against real relays, a real DuckDB file and real .mmdb files.

Protects: exact event, sighting and geolocation rows per partition; idempotent re-runs; a
multi-hour range in one run; honest refusal of past snapshots; clear failures for a missing
database; one unreachable relay never failing the crawl.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest
from dagster_env import (
    LOOPBACK_AS,
    LOOPBACK_PLACE,
    graph_resources,
    python_assets,
    write_test_geoip,
)
from relays import BASE_HOUR, HOUR, in_window

from nostr_assets.defs.relays import snapshots as snapshots_module
from nostr_assets.defs.resources import NostrCrawlerResource
from nostr_assets.lib.protocol.event import sign_event
from nostr_assets.lib.warehouse.event_landing import land_window
from nostr_assets.lib.warehouse.tables.event_relay_sightings import sighting_rows
from nostr_assets.lib.warehouse.tables.nostr_events import event_rows

RAW_ASSETS = python_assets()
FIRST_HOUR = datetime.fromtimestamp(BASE_HOUR, UTC)
# The three event tables are written together: selecting one selects the others.
EVENT_TABLES = dg.AssetSelection.assets(["raw", "nostr_events"]).required_multi_asset_neighbors()


def hour_key(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%d-%H:%M")


def latest_closed_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def materialize(resources, selection, partition_key=None, tags=None, raise_on_error=True):
    return dg.materialize(
        RAW_ASSETS,
        selection=selection,
        partition_key=partition_key,
        resources=resources,
        tags=tags,
        raise_on_error=raise_on_error,
    )


def table(database, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def warehouse(tmp_path, relay_a, relay_b):
    """A fresh DuckDB whose catalog lists relays A and B."""
    city, asn = write_test_geoip(tmp_path)
    database = tmp_path / "nostr.duckdb"
    resources = graph_resources(database, [relay_a.url, relay_b.url], city, asn)
    materialize(resources, "raw/relay_catalog")
    return database, resources


def expected_hour(relays, hour_start: int) -> tuple[set[str], set[tuple[str, str]]]:
    ids, pairs = set(), set()
    for relay in relays:
        for event in in_window(relay.events, hour_start, hour_start + HOUR - 1):
            ids.add(event.id)
            pairs.add((event.id, relay.url))
    return ids, pairs


def test_catalog_lists_relays_marks_loopback_guarded(warehouse, relay_a, relay_b):
    database, _ = warehouse
    rows = table(
        database,
        "select relay_url, source, is_guarded, guard_reason "
        "from raw.relay_catalog order by relay_url",
    )
    assert rows == sorted(
        [(relay_a.url, "env", True, "loopback"), (relay_b.url, "env", True, "loopback")]
    )


def test_events_partition_exact_and_idempotent(warehouse, relay_a, relay_b):
    database, resources = warehouse
    result = materialize(resources, EVENT_TABLES, hour_key(FIRST_HOUR))
    ids, pairs = expected_hour([relay_a, relay_b], BASE_HOUR)
    stored = table(database, "select event_id from raw.nostr_events")
    assert {r[0] for r in stored} == ids and len(stored) == len(ids)
    sightings = set(table(database, "select event_id, relay_url from raw.event_relay_sightings"))
    assert sightings == pairs
    counts = dict(table(database, "select event_id, relay_count from raw.nostr_events"))
    assert all(counts[i] == sum(1 for p in pairs if p[0] == i) for i in ids)
    materialization = result.asset_materializations_for_node("nostr_events")[0]
    assert materialization.metadata["dagster/row_count"].value == len(ids)
    assert materialization.metadata["relays_failed"].value == 0
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"valid_event_share": True, "relays_reached": True}

    everything = "select * from raw.{} order by all"
    before = {
        t: table(database, everything.format(t)) for t in ("nostr_events", "event_relay_sightings")
    }
    materialize(resources, EVENT_TABLES, hour_key(FIRST_HOUR))
    after = {
        t: table(database, everything.format(t)) for t in ("nostr_events", "event_relay_sightings")
    }
    assert after == before


def test_three_hour_range_in_one_run(warehouse, relay_a, relay_b):
    database, resources = warehouse
    last = FIRST_HOUR + timedelta(hours=2)
    result = materialize(
        resources,
        EVENT_TABLES,
        tags={
            "dagster/asset_partition_range_start": hour_key(FIRST_HOUR),
            "dagster/asset_partition_range_end": hour_key(last),
        },
    )
    assert result.success
    expected = set()
    for h in range(3):
        expected |= expected_hour([relay_a, relay_b], BASE_HOUR + h * HOUR)[0]
    per_hour = table(
        database, "select created_hour, count(*) from raw.nostr_events group by 1 order by 1"
    )
    assert len(per_hour) == 3
    assert sum(n for _, n in per_hour) == len(expected)
    assert {r[0] for r in table(database, "select event_id from raw.nostr_events")} == expected
    hours = table(database, "select distinct created_hour from raw.relay_fetch_stats order by 1")
    assert [h for (h,) in hours] == [FIRST_HOUR + timedelta(hours=i) for i in range(3)]


def test_unreachable_relay_is_recorded_not_fatal(tmp_path, relay_a):
    database = tmp_path / "nostr.duckdb"
    dead = "ws://127.0.0.1:9"  # discard port: nothing listens
    resources = graph_resources(database, [relay_a.url, dead])
    materialize(resources, "raw/relay_catalog")
    result = materialize(resources, EVENT_TABLES, hour_key(FIRST_HOUR))
    metadata = result.asset_materializations_for_node("nostr_events")[0].metadata
    assert metadata["relays_failed"].value == 1
    assert metadata["relays_reached"].value == 1
    assert metadata["conflicts_retried"].value == 0  # the file has one writer
    ids, _ = expected_hour([relay_a], BASE_HOUR)
    assert len(table(database, "select * from raw.nostr_events")) == len(ids)
    errors = table(
        database,
        "select relay_url, error_class from raw.relay_fetch_stats where error_class is not null",
    )
    assert [url for url, _ in errors] == [dead]


def test_snapshot_and_geolocation_of_the_latest_hour(warehouse, relay_a, relay_b):
    database, resources = warehouse
    key = hour_key(latest_closed_hour())
    materialize(resources, "raw/relay_snapshots", key)
    rows = table(
        database,
        "select relay_url, is_reachable, connected_ip, software, "
        "rtt_open_ms > 0, 1 = any(supported_nips) from raw.relay_snapshots "
        "order by relay_url",
    )
    assert [r[0] for r in rows] == sorted([relay_a.url, relay_b.url])
    assert all(r[1:3] == (True, "127.0.0.1") and r[4] and r[5] for r in rows)
    assert all(r[3] for r in rows)  # nostr-relay names its software in NIP-11

    materialize(resources, "raw/relay_geolocations", key)
    geo = table(
        database,
        "select ip, country_code, city, latitude, longitude, asn, "
        "as_organization, city_db_edition, asn_db_edition "
        "from raw.relay_geolocations",
    )
    assert len(geo) == 2
    assert all(
        g
        == (
            "127.0.0.1",
            LOOPBACK_PLACE["country_code"],
            LOOPBACK_PLACE["city"],
            LOOPBACK_PLACE["latitude"],
            LOOPBACK_PLACE["longitude"],
            LOOPBACK_AS["asn"],
            LOOPBACK_AS["as_organization"],
            "GeoLite2-City",
            "GeoLite2-ASN",
        )
        for g in geo
    )


def test_past_snapshot_rebuilt_from_nip66_monitor_events(warehouse, relay_a, relay_b):
    """A past hour cannot be probed: its rows come only from stored kind-30166 reports."""
    database, resources = warehouse
    monitor = b"\x09" * 32
    at = BASE_HOUR + 600
    reports = [
        # two reports on relay A in the hour: the later one wins
        sign_event(monitor, at, 30166, [["d", relay_a.url], ["rtt-open", "80"]], ""),
        sign_event(
            monitor,
            at + 60,
            30166,
            [
                ["d", relay_a.url + "/"],
                ["rtt-open", "120"],
                ["rtt-read", "45"],
                ["N", "1"],
                ["N", "11"],
                ["R", "!payment"],
                ["R", "auth"],
            ],
            "",
        ),
        # a relay outside the catalog: not a catalogued relay, no row
        sign_event(monitor, at, 30166, [["d", "wss://elsewhere.example"]], ""),
    ]
    with duckdb.connect(str(database)) as conn:
        land_window(
            conn,
            FIRST_HOUR,
            FIRST_HOUR + timedelta(hours=1),
            event_rows(reports, {e.id: at + 100.0 for e in reports}),
            sighting_rows([], {}),
        )
    result = materialize(resources, "raw/relay_snapshots", hour_key(FIRST_HOUR))
    rows = table(
        database,
        "select relay_url, observation_source, monitor_pubkey, is_reachable, "
        "rtt_open_ms, rtt_read_ms, supported_nips, payment_required, "
        "auth_required, connected_ip from raw.relay_snapshots",
    )
    assert rows == [
        (relay_a.url, "nip66", reports[1].pubkey, True, 120.0, 45.0, [1, 11], False, True, None)
    ]
    metadata = result.asset_materializations_for_node("raw__relay_snapshots")[0].metadata
    assert metadata["nip66_hours"].value == 1 and metadata["probed_hours"].value == 0
    # an hour no monitor reported: nothing is invented
    materialize(resources, "raw/relay_snapshots", hour_key(FIRST_HOUR + timedelta(hours=1)))
    assert table(database, "select count(*) from raw.relay_snapshots") == [(1,)]


def test_missing_geoip_database_fails_geolocation_only(tmp_path, relay_a):
    database = tmp_path / "nostr.duckdb"
    resources = graph_resources(database, [relay_a.url], city_db=tmp_path / "absent.mmdb")
    key = hour_key(latest_closed_hour())
    materialize(resources, "raw/relay_catalog")
    assert materialize(resources, "raw/relay_snapshots", key).success
    result = materialize(resources, "raw/relay_geolocations", key, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "make geoip" in failure.step_failure_data.error.message


def test_writer_waits_for_another_process_holding_the_duckdb_lock(warehouse, relay_a, relay_b):
    """DuckDB allows one writing process: a run that finds the file locked (a dbt build, the
    duckdb CLI, another run) waits and retries instead of failing, and loses nothing."""
    database, resources = warehouse
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"conn = duckdb.connect({str(database)!r})\n"
            "print('locked', flush=True)\n"
            "time.sleep(3)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        result = materialize(resources, EVENT_TABLES, hour_key(FIRST_HOUR))
        waited = time.perf_counter() - started
    finally:
        holder.wait(timeout=30)
    assert result.success
    assert waited > 1.0  # it really met the lock
    ids, _ = expected_hour([relay_a, relay_b], BASE_HOUR)
    assert len(table(database, "select event_id from raw.nostr_events")) == len(ids)


def test_rerunning_an_old_hour_keeps_the_probe_taken_when_it_was_recent(
    warehouse, relay_a, relay_b, monkeypatch
):
    """Our own observation of an hour cannot be taken again: a later rerun of that hour (a
    backfill over it, say) keeps it instead of replacing it with nothing."""
    database, resources = warehouse
    hour = latest_closed_hour()
    materialize(resources, "raw/relay_snapshots", hour_key(hour))
    query = (
        "select relay_url, observation_source, observed_at from raw.relay_snapshots order by all"
    )
    before = table(database, query)
    assert [r[1] for r in before] == ["probe", "probe"]

    class ThreeDaysLater(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(days=3)

    monkeypatch.setattr(snapshots_module, "datetime", ThreeDaysLater)
    result = materialize(resources, "raw/relay_snapshots", hour_key(hour))
    assert table(database, query) == before
    metadata = result.asset_materializations_for_node("raw__relay_snapshots")[0].metadata
    assert metadata["probed_hours"].value == 0 and metadata["nip66_hours"].value == 1


def test_guarded_relays_are_never_contacted_without_configuration(tmp_path, relay_a):
    """Loopback relays in the catalog stay uncontacted unless NOSTR_ALLOW_PRIVATE_ADDRESSES
    (here the resource flag) allows them: no events fetched, no probe made."""
    database = tmp_path / "nostr.duckdb"
    resources = {
        **graph_resources(database, [relay_a.url]),
        "crawler": NostrCrawlerResource(allow_private_addresses=False, connect_timeout_s=3.0),
    }
    materialize(resources, "raw/relay_catalog")
    events = materialize(resources, EVENT_TABLES, hour_key(FIRST_HOUR), raise_on_error=False)
    assert not events.success
    failure = next(e for e in events.all_events if e.event_type_value == "STEP_FAILURE")
    assert "every relay is guarded" in failure.step_failure_data.error.message
    materialize(resources, "raw/relay_snapshots", hour_key(latest_closed_hour()))
    assert table(database, "select count(*) from raw.relay_snapshots") == [(0,)]
    assert table(database, "select count(*) from raw.nostr_events") == [(0,)]
