"""A week of the network through Dagster: the relay farm's 2,500 relays over 168 hours with
2,000 events an hour (benchmarks/relay_farm.py), crawled as ONE single-run backfill of the three
event tables, the way bench_backfill.py does it:

    dagster asset materialize -m nostr_assets.definitions --select raw/relay_catalog
    dagster asset materialize -m nostr_assets.definitions \\
        --select raw/nostr_events,raw/event_relay_sightings,raw/relay_fetch_stats \\
        --partition-range 2026-11-09-00:00...2026-11-15-23:00

with a temporary DAGSTER_HOME and warehouse, NOSTR_RELAYS_FILE = the farm's relay list,
NOSTR_ALLOW_PRIVATE_ADDRESSES=1 and the crawler's defaults (no other NOSTR_* variable of this
shell is passed on; --concurrency sets NOSTR_CONCURRENCY). Prints the wall time and peak RSS of
the backfill run, completeness (events in raw.nostr_events and pairs in
raw.event_relay_sightings against the manifest, misses by reason, using raw.relay_fetch_stats
for how each relay's hour ended) and a JSON line. Target: <= 10 minutes for the full week.

    python benchmarks/bench_network_week.py --relays 250 --hours 12 --per-hour 500   # scaled
    python benchmarks/bench_network_week.py                                            # full

Run time (2 cores): at concurrency 16, with every hour paying every tarpit's 10 s and every
silent relay's 15 s again, 2,500 relays x 2 hours took 443 s (about 10 hours for the full week).
Then (concurrency 256; a relay that failed is not asked again in the same run) 2,500 relays x 12
hours at 2,000 events an hour took 158 s, about 37 minutes for the full week. Now, with hours
fetched in spans of up to a day per relay (lib/network/hourly_fetch.py), the full week takes
187 s (158 s of CPU, every reachable event landed) at 1.3 GB peak RSS: the Dagster process,
the crawl of two spans, and DuckDB within NOSTR_DUCKDB_MEMORY_MB (512). Without that limit
DuckDB kept what the backfill wrote cached, about 9 MB an hour: 1.8 GB for the week.
--max-seconds (default 12 h) bounds a run; a scaled run prints a linear extrapolation to 168
hours.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_network_hour import clean_env, ended_by_behaviour, run_child
from relay_farm import ROOT, FarmSpec, explain_misses, start_farm

TARGET_WALL_S = 600
WEEK_START = datetime(2026, 11, 9, tzinfo=UTC)  # a Monday, after the default first partition
EVENT_TABLES = "raw/nostr_events,raw/event_relay_sightings,raw/relay_fetch_stats"
DAGSTER = Path(sys.executable).parent / "dagster"


def key(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%d-%H:%M")


def materialize(env: dict, workdir: Path, name: str, max_seconds: float, *args: str):
    cmd = [str(DAGSTER), "asset", "materialize", "-m", "nostr_assets.definitions", *args]
    code, wall, usage = run_child(
        cmd, env, workdir / f"{name}.out", workdir / f"{name}.err", max_seconds
    )
    if code != 0:
        tail = (workdir / f"{name}.err").read_text(errors="replace")[-3000:]
        print(f"dagster {name} exited {code} (None: killed after {max_seconds} s):\n{tail}")
    return code, wall, usage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relays", type=int, default=2500)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--per-hour", type=int, default=2000)
    parser.add_argument(
        "--concurrency", type=int, help="NOSTR_CONCURRENCY (default: the setting's own)"
    )
    parser.add_argument("--rtt-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=12 * 3600)
    parser.add_argument("--workdir", type=Path, help="keep the farm, warehouse and logs here")
    args = parser.parse_args()

    spec = FarmSpec(
        relays=args.relays,
        events=args.per_hour * args.hours,
        hour_start=int(WEEK_START.timestamp()),
        hours=args.hours,
        seed=args.seed,
        rtt_scale=args.rtt_scale,
    )
    last_hour = WEEK_START + timedelta(hours=args.hours - 1)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        started = time.perf_counter()
        farm = start_farm(spec, workdir)
        manifest = farm.manifest
        summary = manifest.data["summary"]
        print(
            f"farm: {spec.relays:,} relays, {summary['window_events']:,} events over "
            f"{args.hours} hours, {summary['served_copies']:,} copies on serving relays, "
            f"started in {time.perf_counter() - started:.1f} s"
        )
        home = workdir / "dagster_home"
        home.mkdir(exist_ok=True)
        shutil.copy(ROOT / "data/dagster_home/dagster.yaml", home / "dagster.yaml")
        database = workdir / "bench.duckdb"
        extra = {
            "DAGSTER_HOME": str(home),
            "NOSTR_DUCKDB_PATH": str(database),
            "NOSTR_RELAYS_FILE": str(farm.relays_file),
            "NOSTR_ALLOW_PRIVATE_ADDRESSES": "1",
            "NOSTR_PARTITIONS_START": key(WEEK_START),
        }
        if args.concurrency:
            extra["NOSTR_CONCURRENCY"] = str(args.concurrency)
        env = clean_env(**extra)
        try:
            code, catalog_wall, _ = materialize(
                env, workdir, "catalog", 600, "--select", "raw/relay_catalog"
            )
            if code != 0:
                sys.exit(1)
            print(f"raw/relay_catalog: {catalog_wall:.1f} s", flush=True)
            print(
                f"backfill {key(WEEK_START)}...{key(last_hour)} of {EVENT_TABLES} as one run",
                flush=True,
            )
            code, wall, usage = materialize(
                env,
                workdir,
                "events",
                args.max_seconds,
                "--select",
                EVENT_TABLES,
                "--partition-range",
                f"{key(WEEK_START)}...{key(last_hour)}",
            )
        finally:
            farm_stats = farm.stop()
        with duckdb.connect(str(database), read_only=True) as conn:
            landed = {
                eid for (eid,) in conn.execute("select event_id from raw.nostr_events").fetchall()
            }
            seen = set(
                conn.execute("select event_id, relay_url from raw.event_relay_sightings").fetchall()
            )
            rows = conn.execute(
                "select relay_url, epoch(created_hour)::bigint, error_class, possibly_truncated "
                "from raw.relay_fetch_stats"
            ).fetchall()

    ends = {
        (url, hour): error or ("truncated" if truncated else None)
        for url, hour, error, truncated in rows
    }

    def outcome(url: str, created_at: int) -> str | None:
        return ends.get((url, created_at - created_at % 3600), "not crawled")

    worst: dict[str, str | None] = {}
    for (url, _), end in sorted(ends.items(), key=lambda item: item[1] is None):
        worst.setdefault(url, end)  # an hour with an error or truncation, else None
    completeness = explain_misses(manifest, landed, outcome)
    expected_pairs = manifest.sightings()
    fresh = manifest.fresh_dense_ids()
    dense_second = manifest.dense_second or manifest.since
    dense_hour = dense_second - (dense_second - manifest.since) % 3600
    # Dense-second events of authors seen nowhere else, missing from a relay whose hour was
    # flagged possibly_truncated: the one gap a crawler cannot close (and says so).
    flagged_gaps = sum(
        1
        for event_id, url in expected_pairs - seen
        if event_id in fresh and ends.get((url, dense_hour)) == "truncated"
    )
    rss_mb = usage.ru_maxrss / 1024
    figures = {
        "relays": spec.relays,
        "hours": args.hours,
        "events_per_hour": args.per_hour,
        "concurrency": args.concurrency or "default",
        "rtt_scale": spec.rtt_scale,
        "exit_code": code,
        "catalog_wall_s": round(catalog_wall, 1),
        "backfill_wall_s": round(wall, 1),
        "backfill_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(rss_mb),
        **completeness,
        "sightings_expected": len(expected_pairs),
        "sightings_missing": len(expected_pairs - seen),
        "sightings_missing_flagged_dense": flagged_gaps,
        "sightings_unexpected": len(seen - expected_pairs),
        "relay_hours_by_end": dict(Counter(str(end or "ok") for end in ends.values())),
        "relay_ends_by_behaviour": ended_by_behaviour(manifest, worst),
        "farm_events_sent": farm_stats.get("events_sent", 0),
        "farm_serve_cpu_s": round(farm_stats.get("serve_cpu_ms", 0) / 1000, 2),
    }
    full = args.relays >= 2500 and args.hours >= 168
    # Timeouts dominate, paid per relay and hour at a fixed concurrency: linear in both.
    full_week_s = wall / (args.relays * args.hours) * 2500 * 168
    figures["full_week_estimate_s"] = round(wall if full else full_week_s)
    verdict = "ok" if figures["full_week_estimate_s"] <= TARGET_WALL_S else "OVER"
    print(
        f"backfill wall: {wall:8.1f} s  (full week {'measured' if full else 'extrapolated'}: "
        f"{figures['full_week_estimate_s'] / 3600:.1f} h; target <= {TARGET_WALL_S} s: {verdict})"
    )
    print(f"backfill CPU:  {figures['backfill_cpu_s']:8.1f} s")
    print(f"peak RSS:      {rss_mb:8.0f} MB")
    c = completeness
    print(
        f"events: {c['landed_expected']:,} of {c['expected']:,} expected landed, "
        f"{c['missed']:,} missed; {c['only_on_non_serving_relays']:,} more are held only by "
        "relays that serve nothing (not expected)"
    )
    for reason, n in c["missed_by_reason"].items():
        print(f"  missed: {n:7,}  {reason}")
    print(
        f"  landed outside the week: {c['landed_outside_window_or_unknown']}, landed though no "
        f"serving relay holds it: {c['landed_though_no_serving_relay_holds_it']}"
    )
    print(
        f"sightings: {len(expected_pairs) - figures['sightings_missing']:,} of "
        f"{len(expected_pairs):,} expected ({flagged_gaps} of the missing are dense-second "
        f"events of unseen authors on relays flagged truncated), "
        f"{figures['sightings_unexpected']} unexpected"
    )
    print(f"relay-hours by how they ended: {figures['relay_hours_by_end']}")
    print("relays by their worst hour, by behaviour:")
    for behaviour, counts in figures["relay_ends_by_behaviour"].items():
        print(f"  {behaviour:13} {counts}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
