"""Protects parallel writers on DuckLake, end to end: a `dagster asset materialize` run of
raw/nostr_events over four hours (--partition-range) against a lake (SQLite catalog, Parquet
folder) and a real relay (PyPI nostr-relay on 127.0.0.1) shares its hours between two writer
processes (NOSTR_DUCKLAKE_WRITERS), each crawling and landing its half at once, under the
multiprocess executor. Together they land exactly the relay's events of those hours, each once,
with its sighting and one fetch-stats row per relay and hour."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from relays import BASE_HOUR, HOUR, make_events, start_relay

from nostr_assets.lib.warehouse.lake import connect_lake
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.lib.warehouse.tables.relay_catalog import upsert_catalog

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = PROJECT_ROOT / "data" / "dagster_home" / "dagster.yaml"
HOURS = 4
DAGSTER = [
    sys.executable,
    "-m",
    "dagster",
    "asset",
    "materialize",
    "-m",
    "nostr_assets.definitions",
]
EVENT_TABLES = "raw/nostr_events,raw/event_relay_sightings,raw/relay_fetch_stats"


def key(index: int) -> str:
    return datetime.fromtimestamp(BASE_HOUR + index * HOUR, UTC).strftime("%Y-%m-%d-%H:%M")


def hour_text(index: int) -> str:
    return datetime.fromtimestamp(BASE_HOUR + index * HOUR, UTC).strftime("%Y-%m-%d %H:00")


def seed_catalog(catalog: str, data_path: str, relay_url: str) -> None:
    """The relay in the lake's catalog, as raw/relay_catalog would put it there."""
    conn = connect_lake(catalog, data_path)
    try:
        ensure_raw_tables(conn)
        conn.register(
            "incoming",
            pa.table(
                {
                    "relay_url": [relay_url],
                    "source": ["env"],
                    "is_guarded": [False],
                    "guard_reason": pa.array([None], pa.string()),
                }
            ),
        )
        upsert_catalog(conn, datetime.now(UTC))
    finally:
        conn.close()


def test_a_backfill_run_lands_its_hours_from_two_writer_processes(tmp_path):
    events = make_events(hours=HOURS, per_hour=20, burst=30)
    relay = start_relay(tmp_path / "relay", events, max_limit=25)
    try:
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
        (tmp_path / "relays.txt").write_text("")
        catalog = f"sqlite:{tmp_path / 'lake' / 'catalog.sqlite'}"
        data = f"{tmp_path / 'lake' / 'files'}/"
        seed_catalog(catalog, data, relay.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOSTR_")}
        env |= {
            "DAGSTER_HOME": str(home),
            "NOSTR_WAREHOUSE": "ducklake",
            "NOSTR_DUCKLAKE_CATALOG": catalog,
            "NOSTR_DUCKLAKE_DATA_PATH": data,
            "NOSTR_RELAYS": relay.url,
            "NOSTR_RELAYS_FILE": str(tmp_path / "relays.txt"),
            "NOSTR_ALLOW_PRIVATE_ADDRESSES": "true",
            "NOSTR_PARTITIONS_START": key(0),
            "NOSTR_DUCKLAKE_WRITERS": "2",
        }
        started = time.monotonic()
        run = subprocess.run(
            [
                *DAGSTER,
                *("--select", EVENT_TABLES),
                *("--partition-range", f"{key(0)}...{key(HOURS - 1)}"),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=280,
        )
        elapsed = time.monotonic() - started
    finally:
        relay.stop()
    assert run.returncode == 0, run.stderr[-4000:]
    assert "RUN_SUCCESS" in run.stderr
    assert "multiprocess executor" in run.stderr  # steps in processes of their own
    assert f"Fetching {HOURS} hour(s) from 1 relays in 2 writer processes" in run.stderr
    # Each writer reported its own share: the first and the second half of the range.
    for first, last in ((0, HOURS // 2 - 1), (HOURS // 2, HOURS - 1)):
        share = f"[writer {hour_text(first)}..{hour_text(last)}] [{HOURS // 2}/{HOURS // 2} hours]"
        assert share in run.stderr

    end = BASE_HOUR + HOURS * HOUR
    conn = connect_lake(catalog, data, read_only=True)
    try:
        landed = conn.execute(
            "select event_id, created_at, relay_count from raw.nostr_events order by event_id"
        ).fetchall()
        sightings = conn.execute(
            "select event_id, relay_url from raw.event_relay_sightings order by event_id"
        ).fetchall()
        stats = conn.execute(
            "select created_hour, relay_url, events from raw.relay_fetch_stats order by all"
        ).fetchall()
    finally:
        conn.close()
    wanted = sorted((e.id, e.created_at, 1) for e in events if BASE_HOUR <= e.created_at < end)
    assert landed == wanted
    assert sightings == [(event_id, relay.url) for event_id, _, _ in wanted]
    per_hour: dict[datetime, int] = {}
    for e in events:
        if BASE_HOUR <= e.created_at < end:
            hour = datetime.fromtimestamp(e.created_at - (e.created_at - BASE_HOUR) % HOUR, UTC)
            per_hour[hour] = per_hour.get(hour, 0) + 1
    assert stats == [(hour, relay.url, per_hour[hour]) for hour in sorted(per_hour)]
    print(f"{HOURS} hours by two writer processes: {elapsed:.1f} s")
