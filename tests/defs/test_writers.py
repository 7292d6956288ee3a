"""Protects who writes the warehouse at once, as NOSTR_WAREHOUSE chooses: on the DuckDB file every
writing step takes the one-slot `duckdb` pool, one process lands an events run and a run's
steps share its process; on a DuckLake the raw writers take no pool, an events run's hours are
shared by NOSTR_DUCKLAKE_WRITERS processes, steps get processes of their own, and dbt builds
(still taking turns) are retried when they lose to a landing. On both a backfill is one run,
which the CLI's --partition-range needs. The code location is loaded in a child process per
setting, as Dagster loads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

DESCRIBE = """
import json
from nostr_assets.definitions import defs
d = defs()
assets = {}
for ad in d.resolve_asset_graph().assets_defs:
    if not ad.is_executable:
        continue
    policy = ad.backfill_policy
    for key in ad.keys:
        assets[key.to_user_string()] = {
            "pool": ad.op.pool,
            "per_run": None if policy is None else policy.max_partitions_per_run,
            "retries": None if ad.op.retry_policy is None else ad.op.retry_policy.max_retries,
        }
from nostr_assets.defs.writers import EVENT_WRITERS
print(json.dumps({
    "executor": d.resolve_implicit_global_asset_job_def().executor_def.name,
    "event_writers": EVENT_WRITERS,
    "assets": assets,
}))
"""

RAW_WRITERS = [
    "raw/nostr_events",
    "raw/event_relay_sightings",
    "raw/relay_fetch_stats",
    "raw/relay_catalog",
    "raw/relay_snapshots",
    "raw/relay_geolocations",
    "raw/nip66_publish_results",
]


def describe(tmp_path, **env: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", DESCRIBE],
        env={**os.environ, "NOSTR_DUCKDB_PATH": str(tmp_path / "w.duckdb"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_on_the_file_writers_take_turns_and_a_backfill_is_one_run(tmp_path):
    found = describe(tmp_path, NOSTR_WAREHOUSE="duckdb", NOSTR_DUCKLAKE_WRITERS="3")
    assets = found["assets"]
    assert found["executor"] == "in_process"
    assert found["event_writers"] == 1
    for key in RAW_WRITERS:
        assert assets[key]["pool"] == "duckdb", key
    assert assets["raw/nostr_events"]["per_run"] is None  # single run: the whole range
    dbt = [a for k, a in assets.items() if k.startswith(("marts/", "staging/", "intermediate/"))]
    assert dbt and all(a["pool"] == "duckdb" and a["retries"] is None for a in dbt)


@pytest.mark.slow
def test_on_a_lake_writers_land_at_once_and_dbt_retries(tmp_path):
    found = describe(tmp_path, NOSTR_WAREHOUSE="ducklake", NOSTR_DUCKLAKE_WRITERS="3")
    assets = found["assets"]
    assert found["executor"] == "multiprocess"
    assert found["event_writers"] == 3
    for key in RAW_WRITERS:
        assert assets[key]["pool"] is None, key
    assert assets["raw/nostr_events"]["per_run"] is None  # still one run per backfill
    dbt = [a for k, a in assets.items() if k.startswith(("marts/", "staging/", "intermediate/"))]
    assert dbt and all(a["pool"] == "duckdb" and a["retries"] == 3 for a in dbt)
