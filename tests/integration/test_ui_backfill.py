""" "Materialize all" over a range of hours, launched the way the UI launches it.

Protects: the backfill the UI creates for every asset and a range of hours targets every asset
for those hours (the hourly marts included, which were left out while the staging views between
them and the raw tables had no partitions), runs to success in a handful of runs, and fills the
hourly marts for exactly those hours. Real relays, a real DuckDB file, real dbt.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_env import write_test_geoip
from relays import BASE_HOUR
from ui_backfill import launch_ui_backfill, ui_backfill_instance

DEFS_FILE = Path(__file__).with_name("ui_backfill_defs.py")
FIRST = datetime.fromtimestamp(BASE_HOUR, UTC)
HOURS = [(FIRST + timedelta(hours=i)).strftime("%Y-%m-%d-%H:%M") for i in range(3)]
HOURLY_MARTS = [
    dg.AssetKey(["marts", "fct_events_hourly"]),
    dg.AssetKey(["marts", "fct_relay_health_hourly"]),
]

pytestmark = pytest.mark.integration


def test_materialize_all_over_a_range_builds_every_asset(tmp_path, monkeypatch, relay_all):
    from nostr_assets.definitions import defs as load_definitions

    city, asn = write_test_geoip(tmp_path)
    database = tmp_path / "nostr.duckdb"
    monkeypatch.setenv("UI_BACKFILL_DATABASE", str(database))
    monkeypatch.setenv("UI_BACKFILL_RELAYS", relay_all.url)
    monkeypatch.setenv("UI_BACKFILL_CITY_DB", str(city))
    monkeypatch.setenv("UI_BACKFILL_ASN_DB", str(asn))
    graph = load_definitions().resolve_asset_graph()
    every_asset = sorted(
        (k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable),
        key=lambda k: k.to_user_string(),
    )

    with ui_backfill_instance() as instance:
        outcome = launch_ui_backfill(str(DEFS_FILE), instance, every_asset, HOURS)

    assert outcome.missing_asset_keys == frozenset()
    for key in every_asset:
        expected = tuple(HOURS) if graph.get(key).partitions_def is not None else None
        assert outcome.target[key] == expected, key.to_user_string()
    assert outcome.succeeded, outcome.error
    assert set(outcome.materialized_by_runs) == set(every_asset)
    # Few runs: one per step of the lineage, each covering the whole range, never one per hour.
    assert len(outcome.runs) <= 8, [(r.asset_selection, r.partition_range) for r in outcome.runs]
    assert not [r for r in outcome.runs if r.partition_key is not None]

    with duckdb.connect(str(database), read_only=True) as conn:
        hours = conn.execute(
            "select distinct strftime(event_hour at time zone 'UTC', '%Y-%m-%d-%H:%M') "
            "from fct_events_hourly order by 1"
        ).fetchall()
        raw = conn.execute(
            "select distinct strftime(created_hour at time zone 'UTC', '%Y-%m-%d-%H:%M') "
            "from raw.nostr_events order by 1"
        ).fetchall()
    assert [h for (h,) in hours] == [h for (h,) in raw] == HOURS
