"""Automation, tick by tick, as the daemon evaluates it: the marts keep themselves fresh.

Protects: an hour that lands (a real fetch from a real relay into a real DuckDB file) makes the
following ticks request every model downstream of it, that hour for the hourly models and a
rebuild for the others, whatever hours were never filled before it; an hour whose fetch
reached no relay is shown as failed and makes the ticks request nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster_env import graph_resources
from relays import BASE_HOUR, free_port

from nostr_assets.defs.events.assets import nostr_events
from nostr_assets.defs.relays.catalog import relay_catalog

pytestmark = pytest.mark.slow  # evaluates automation over the whole graph with dbt

FIRST_HOUR = datetime.fromtimestamp(BASE_HOUR, UTC).strftime("%Y-%m-%d-%H:%M")
EVENT_TABLES = ["nostr_events", "event_relay_sightings", "relay_fetch_stats"]


@pytest.fixture(scope="module")
def defs():
    from nostr_assets.definitions import defs as load_definitions

    return load_definitions()


def downstream_of_events(defs) -> set[dg.AssetKey]:
    """Every model that reads the three event tables, in the lineage graph. The relay
    snapshots also read events (NIP-66 reports) but are scheduled, not automated: what only
    they feed is left out."""
    graph = defs.resolve_asset_graph()
    roots = dg.AssetSelection.assets(*(["raw", t] for t in EVENT_TABLES))
    snapshots = dg.AssetSelection.assets(["raw", "relay_snapshots"]).downstream()
    return set((roots.downstream() - roots - snapshots).resolve(graph))


def downstream_of_catalog(defs) -> set[str]:
    graph = defs.resolve_asset_graph()
    selection = dg.AssetSelection.assets(["staging", "stg_nostr__relay_catalog"]).downstream()
    return {key.to_user_string() for key in selection.resolve(graph)}


def ticks(defs, instance, count: int, cursor=None):
    """Evaluate ``count`` ticks; between ticks, record what was requested as materialized
    (what the launched runs would do), so the next tick sees it. Returns the requests."""
    requested: list[set[tuple[dg.AssetKey, str | None]]] = []
    for _ in range(count):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        batch = set()
        for entity in result.results:
            if entity.true_subset.size == 0 or not isinstance(entity.key, dg.AssetKey):
                continue
            subset = entity.true_subset
            keys = subset.expensively_compute_partition_keys() if subset.is_partitioned else [None]
            for partition in keys:
                batch.add((entity.key, partition))
        for key, partition in batch:
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
        requested.append(batch)
    return requested, cursor


def fetch_hour(tmp_path, instance, relay_urls: list[str]) -> dg.ExecuteInProcessResult:
    database = tmp_path / "nostr.duckdb"
    resources = graph_resources(database, relay_urls)
    assets = [relay_catalog, nostr_events]
    dg.materialize(assets, selection="raw/relay_catalog", resources=resources, instance=instance)
    return dg.materialize(
        assets,
        selection=dg.AssetSelection.assets(
            ["raw", "nostr_events"]
        ).required_multi_asset_neighbors(),
        partition_key=FIRST_HOUR,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def test_a_landed_hour_reaches_every_downstream_model(tmp_path, defs, relay_a):
    with dg.instance_for_test() as instance:
        # Before anything lands: nothing to do, however many hours are missing upstream.
        first, cursor = ticks(defs, instance, 1)
        assert first == [set()]
        result = fetch_hour(tmp_path, instance, [relay_a.url])
        assert result.success
        requested, _ = ticks(defs, instance, 4, cursor)

    everything = set().union(*requested)
    graph = defs.resolve_asset_graph()
    for key in downstream_of_events(defs):
        partitioned = graph.get(key).partitions_def is not None
        expected = (key, FIRST_HOUR if partitioned else None)
        assert expected in everything, key.to_user_string()
    # Only the hour that landed, and each model once.
    assert all(partition in (FIRST_HOUR, None) for _, partition in everything)
    assert sum(len(batch) for batch in requested) == len(everything)
    # The hourly staging views and marts come first, the models over them on a later tick.
    hourly_first = {key.to_user_string() for key, _ in requested[0]}
    assert {"staging/stg_nostr__events", "marts/fct_events_hourly"} <= hourly_first
    assert "intermediate/int_events_deduplicated" not in hourly_first
    # And then it is quiet again.
    assert requested[-1] == set()


def test_a_failed_hour_is_failed_and_builds_nothing(tmp_path, defs):
    dead = f"ws://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    with dg.instance_for_test() as instance:
        _, cursor = ticks(defs, instance, 1)
        result = fetch_hour(tmp_path, instance, [dead])
        assert not result.success
        failure = result.failure_data_for_node("nostr_events")
        assert "no network" in failure.error.message.lower()

        events_key = dg.AssetKey(["raw", "nostr_events"])
        assert instance.get_materialized_partitions(events_key) == set()
        status = instance.get_status_by_partition(
            events_key, [FIRST_HOUR], defs.resolve_asset_graph().get(events_key).partitions_def
        )
        assert status == {FIRST_HOUR: dg.AssetPartitionStatus.FAILED}
        requested, _ = ticks(defs, instance, 3, cursor)
    # The catalog was materialized: what reads it may follow, nothing that reads events.
    touched = {key.to_user_string() for batch in requested for key, _ in batch}
    assert touched <= downstream_of_catalog(defs), touched
    assert not touched & {key.to_user_string() for key in downstream_of_events(defs)}
