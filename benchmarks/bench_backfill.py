"""A week's backfill of raw/nostr_events through the `dagster asset materialize` CLI.

Builds a realistic synthetic week (benchmarks/synthetic.py: kinds 1/7/3/0 in realistic shares,
spread over 168 hours), serves it from a real local relay (PyPI nostr-relay on 127.0.0.1), then:

1. materialises all 168 hourly partitions as ONE run (`--partition-range`), and
2. materialises 12 of those partitions as 12 separate runs,

and prints events landed per second, the time each run spends outside fetching and landing
(Dagster's and our fixed cost), and that cost per run. Run: `python benchmarks/bench_backfill.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import duckdb  # noqa: E402
from relays import start_relay  # noqa: E402
from synthetic import load_or_build  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache"
EVENT_TABLES = "raw/nostr_events,raw/event_relay_sightings,raw/relay_fetch_stats"
BIN = Path(sys.executable).parent
WEEK_START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
HOURS = 168


def key(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%d-%H:%M")


def dagster(env: dict, *args: str) -> float:
    started = time.perf_counter()
    run = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "nostr_assets.definitions", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        sys.exit(f"dagster failed ({args}):\n{run.stderr[-3000:]}")
    return elapsed


def latest_fetch_metadata(home: Path) -> dict:
    """fetch_wall_seconds and row counts of the latest raw/nostr_events materialisation."""
    code = (
        "import json, dagster as dg\n"
        "inst = dg.DagsterInstance.get()\n"
        "ev = inst.get_latest_materialization_event(dg.AssetKey(['raw','nostr_events']))\n"
        "md = ev.asset_materialization.metadata\n"
        "nums = {k: v.value for k, v in md.items() if isinstance(v.value, (int, float))}\n"
        "print(json.dumps(nums))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def relay_ceiling(relay_url: str) -> tuple[int, float]:
    """Events/s the relay can serve at all: the same hourly fetch, verified, but not landed."""
    import asyncio

    from nostr_assets.lib.network.connection import ClientConfig
    from nostr_assets.lib.network.crawler import window_crawler
    from nostr_assets.lib.network.hourly_fetch import fetch_hours, hours_between

    hours = hours_between(WEEK_START, WEEK_START + timedelta(hours=HOURS))

    async def fetch_all() -> int:
        total = 0
        async for batch in fetch_hours(
            [relay_url],
            hours,
            crawl_window=window_crawler(None, ClientConfig(allow_private=True)),
            concurrency=16,
            hours_in_flight=8,
            land=lambda b: (sum(len(c.result.events) for c in b), 0),
        ):
            total += batch.events
        return total

    started = time.perf_counter()
    total = asyncio.run(fetch_all())
    return total, time.perf_counter() - started


def relay_event_count(sqlite_path: Path) -> int:
    import sqlite3

    with sqlite3.connect(sqlite_path) as db:
        return db.execute("select count(*) from events").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-hour", type=int, default=300)
    parser.add_argument("--single-runs", type=int, default=12)
    args = parser.parse_args()

    total = HOURS * args.events_per_hour
    started = time.perf_counter()
    events = load_or_build(total, start=int(WEEK_START.timestamp()), span=HOURS * 3600)
    print(
        f"synthetic week: {len(events):,} events over {HOURS} hours "
        f"({time.perf_counter() - started:.1f} s to build or load)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        # nostr-relay loads about 400 events/s (it verifies each one in Python): keep the loaded
        # database between runs, as the event set itself is kept.
        relay_dir = CACHE / f"relay-week-{len(events)}"
        loaded = (relay_dir / "nostr.sqlite3").exists()
        relay = start_relay(relay_dir, () if loaded else events, max_limit=500, load_timeout=1800)
        print(
            f"local relay (nostr-relay, max_limit 500) loaded in "
            f"{time.perf_counter() - started:.1f} s"
        )
        home = tmp / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text((ROOT / "data/dagster_home/dagster.yaml").read_text())
        env = {
            **os.environ,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "DAGSTER_HOME": str(home),
            "NOSTR_DUCKDB_PATH": str(tmp / "bench.duckdb"),
            "NOSTR_RELAYS": relay.url,
            "NOSTR_RELAYS_FILE": "/dev/null",
            "NOSTR_ALLOW_PRIVATE_ADDRESSES": "1",
            # The benchmark week is in 2024, before the default first partition.
            "NOSTR_PARTITIONS_START": "2024-03-04-00:00",
        }
        try:
            ceiling_events, ceiling_s = relay_ceiling(relay.url)
            dagster(env, "--select", "raw/relay_catalog")
            last = WEEK_START + timedelta(hours=HOURS - 1)
            week_wall = dagster(
                env,
                "--select",
                EVENT_TABLES,
                "--partition-range",
                f"{key(WEEK_START)}...{key(last)}",
            )
            week = latest_fetch_metadata(home)
            with duckdb.connect(str(tmp / "bench.duckdb"), read_only=True) as conn:
                landed = conn.execute("select count(*) from raw.nostr_events").fetchone()[0]
            # The relay replaces kinds 0 and 3 per author (NIP-01), so it holds fewer events
            # than were generated: completeness is measured against what it holds.
            held = relay_event_count(relay_dir / "nostr.sqlite3")

            single = []
            for i in range(args.single_runs):
                hour = WEEK_START + timedelta(hours=i * (HOURS // args.single_runs))
                wall = dagster(env, "--select", EVENT_TABLES, "--partition", key(hour))
                single.append((wall, latest_fetch_metadata(home)["fetch_wall_seconds"]))
        finally:
            relay.stop()

    fetch = week["fetch_wall_seconds"]
    outside = week_wall - fetch
    per_run = [wall - fetch_s for wall, fetch_s in single]
    figures = {
        "events": landed,
        "events_held_by_relay": held,
        "relay_ceiling_events_per_s": round(ceiling_events / ceiling_s),
        "week_run_wall_s": round(week_wall, 2),
        "week_fetch_and_land_s": round(fetch, 2),
        "week_outside_fetch_and_land_s": round(outside, 2),
        "events_per_s_whole_run": round(landed / week_wall),
        "events_per_s_fetch_and_land": round(landed / fetch),
        "single_runs": len(single),
        "single_run_mean_wall_s": round(sum(w for w, _ in single) / len(single), 2),
        "fixed_cost_per_run_s": round(sum(per_run) / len(per_run), 2),
        "crawl_seconds_summed": week.get("crawl_seconds"),
        "land_seconds_summed": week.get("land_seconds"),
    }
    print(
        f"relay holds {held:,} events; landed {landed:,} "
        f"({'complete' if held == landed else 'INCOMPLETE'})"
    )
    print(
        f"relay ceiling: the relay serves {figures['relay_ceiling_events_per_s']:,} events/s "
        "to the same verified hourly fetch without landing (nostr-relay is Python, one core)"
    )
    print(
        f"week backfill: {landed:,} events in ONE run of {week_wall:.1f} s "
        f"({figures['events_per_s_whole_run']:,} events/s overall)"
    )
    print(
        f"  fetching + landing: {fetch:.1f} s ({figures['events_per_s_fetch_and_land']:,} events/s)"
    )
    print(f"  outside fetching and landing: {outside:.1f} s (target < 15 s)")
    print(
        f"{len(single)} single-partition runs: mean {figures['single_run_mean_wall_s']} s wall, "
        f"fixed cost {figures['fixed_cost_per_run_s']} s per run"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
