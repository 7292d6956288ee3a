"""How the hourly dbt build scales with history: an empty warehouse vs a month of it.

Generates a synthetic month (2.16 M events, 3000 per hour, about 5.4 M sightings over 20 relays,
hourly snapshots and geolocations) straight into the raw tables of a temporary DuckDB file with
DuckDB SQL (no signatures: dbt trusts raw), then times `dbt build --select tag:hourly` (the
hourly incremental models and their tests; nothing else depends on them) through the `dbt` CLI,
the way dagster-dbt runs it:

- one hour with a warehouse whose raw tables hold only that hour;
- the same hour with the whole month present (target: < 1.5x the empty one);
- a 168-hour range in one invocation.

Run: `.venv/bin/python benchmarks/bench_dbt.py` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from nostr_assets.lib.warehouse.schema import ensure_raw_tables

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DBT = str(Path(sys.executable).with_name("dbt"))

MONTH_START = datetime(2024, 3, 1, tzinfo=UTC)
HOURS = 720  # 30 days
EVENTS_PER_HOUR = 3000
RELAYS = 20
AUTHORS = 50_000
BENCH_HOUR = 400  # 2024-03-17 16:00, mid-month: a week of snapshots behind it
REPEATS = 3

# One statement per raw table; {lo}/{hi} bound the hours generated, so the empty warehouse and
# the month share the same rows for the benchmarked hour. Event i is created at
# start + i * 3600 / EVENTS_PER_HOUR seconds, so rows land in created_hour order as the crawler
# writes them.
EVENTS_SQL = """
insert into raw.nostr_events
with numbered as (
    select
        i,
        {start} + i * 3600 // {per_hour} as created_at,
        case
            when i % 100 < 55 then 1
            when i % 100 < 75 then 7
            when i % 100 < 80 then 6
            when i % 100 < 85 then 9735
            when i % 100 < 88 then 3
            when i % 100 < 90 then 0
            when i % 100 < 91 then 5
            when i % 100 < 94 then 1059
            when i % 100 < 95 then 30023
            when i % 100 < 96 then 10002
            when i % 100 < 97 then 22242
            else 4
        end as kind,
        lpad(to_hex((i * 7919) % {authors}), 64, 'a') as pubkey
    from range({lo} * {per_hour}, {hi} * {per_hour}) as t(i)
)
select
    lpad(to_hex(i), 64, '0'),
    case when kind = 1059 then lpad(to_hex(i), 64, 'f') else pubkey end,
    created_at,
    to_timestamp(created_at - created_at % 3600),
    kind,
    case kind
        when 7 then '[["e","' || lpad(to_hex(greatest(i - 1 - i % 13, 0)), 64, '0') || '"]]'
        when 9735 then '[["p","' || pubkey || '"],["bolt11","lnbc' || (i % 500 + 1)
            || 'u1pvjluezpp5qqqsyqcyq5rq"],["description","{{\\"pubkey\\":\\"'
            || lpad(to_hex(i % 977), 64, 'b') || '\\"}}"]]'
        when 30023 then '[["d","post-' || (i % 40) || '"],["t","nostr"]]'
        when 5 then '[["e","' || lpad(to_hex(greatest(i - 100, 0)), 64, '0') || '"]]'
        else '[["p","' || lpad(to_hex(i % 3001), 64, 'c') || '"]]'
    end,
    'synthetic content ' || i,
    repeat('0', 128),
    '{{}}',
    to_timestamp(created_at + 5),
    1 + i % 4
from numbered
"""

SIGHTINGS_SQL = """
insert into raw.event_relay_sightings
select
    e.event_id,
    'wss://relay' || ((hash(e.event_id) + j * 7) % {relays}) || '.example.com',
    e.created_hour,
    e.first_seen_at + to_seconds(j)
from raw.nostr_events as e, range(4) as r(j)
where j < e.relay_count
"""

SNAPSHOTS_SQL = """
insert into raw.relay_snapshots (
    snapshot_hour, relay_url, observed_at, connected_ip, is_reachable, rtt_open_ms,
    rtt_read_ms, nip11_raw, software, software_version, supported_nips, payment_required,
    auth_required
)
select
    timestamptz '{month_start}' + to_hours(h),
    'wss://relay' || r || '.example.com',
    timestamptz '{month_start}' + to_hours(h) + interval 5 minute,
    '203.0.113.' || r,
    (h * 31 + r) % 17 <> 0,
    50 + r * 3 + h % 7,
    20 + r,
    '{{}}',
    case when r % 3 = 0 then 'strfry' else 'nostr-rs-relay' end,
    '1.' || (r % 4),
    [1, 2, 9, 11] || case when r % 2 = 0 then [42] else [] end,
    r % 5 = 0,
    r % 5 = 0
from range({lo}, {hi}) as h(h), range({relays}) as rr(r)
"""

GEO_SQL = """
insert into raw.relay_geolocations (
    snapshot_hour, relay_url, ip, country_code, country_name, city, latitude, longitude, asn
)
select
    snapshot_hour, relay_url, connected_ip,
    ['DE', 'US', 'FR', 'JP'][1 + (hash(relay_url) % 4)::bigint], 'Somewhere', 'City',
    10.0 + hash(relay_url) % 50, 5.0 + hash(relay_url) % 90, 64500 + hash(relay_url) % 20
from raw.relay_snapshots
"""

CATALOG_SQL = """
insert into raw.relay_catalog
select 'wss://relay' || r || '.example.com', 'bootstrap', timestamptz '{month_start}',
       timestamptz '{month_start}' + to_hours({hi}), false, null
from range({relays}) as t(r)
"""


def generate(path: Path, lo: int, hi: int) -> int:
    """Fill the raw tables of a new DuckDB file with hours [lo, hi) of the synthetic month."""
    params = {
        "start": int(MONTH_START.timestamp()),
        "per_hour": EVENTS_PER_HOUR,
        "authors": AUTHORS,
        "relays": RELAYS,
        "lo": lo,
        "hi": hi,
        "month_start": MONTH_START.isoformat(),
    }
    conn = duckdb.connect(str(path))
    try:
        conn.execute("set TimeZone = 'UTC'")
        ensure_raw_tables(conn)
        for sql in (EVENTS_SQL, SIGHTINGS_SQL, SNAPSHOTS_SQL, GEO_SQL, CATALOG_SQL):
            conn.execute(sql.format(**params))
        conn.execute("checkpoint")
        return conn.execute("select count(*) from raw.nostr_events").fetchone()[0]
    finally:
        conn.close()


def dbt(db: Path, target: Path, *args: str) -> tuple[float, float]:
    """Run the dbt CLI; return (wall seconds, seconds dbt reports for its nodes' run)."""
    env = {**os.environ, "NOSTR_DUCKDB_PATH": str(db)}
    began = time.perf_counter()
    proc = subprocess.run(
        [
            DBT,
            "build",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(target),
            "--log-path",
            str(target),
            "--quiet",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"dbt build {args} failed:\n{proc.stdout}\n{proc.stderr}")
    results = json.loads((target / "run_results.json").read_text())
    return wall, results["elapsed_time"]


def window_vars(start_hour: int, hours: int) -> str:
    start = MONTH_START + timedelta(hours=start_hour)
    end = start + timedelta(hours=hours)
    fmt = "%Y-%m-%d %H:%M:%S"
    return json.dumps({"window_start": start.strftime(fmt), "window_end": end.strftime(fmt)})


def timed_hourly(db: Path, target: Path, start_hour: int, hours: int, repeats: int):
    runs = [
        dbt(db, target, "--select", "tag:hourly", "--vars", window_vars(start_hour, hours))
        for _ in range(repeats)
    ]
    return statistics.median(w for w, _ in runs), statistics.median(e for _, e in runs)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_dbt_") as tmp:
        root = Path(tmp)
        empty, month = root / "empty.duckdb", root / "month.duckdb"

        began = time.perf_counter()
        n_empty = generate(empty, BENCH_HOUR, BENCH_HOUR + 1)
        n_month = generate(month, 0, HOURS)
        print(
            f"generated: {n_month:,} events over {HOURS} hours, {RELAYS} relays "
            f"({time.perf_counter() - began:.1f} s); empty warehouse: {n_empty:,} events"
        )

        # Setup (not the measure): build every model once so the incremental tables exist.
        wall, elapsed = dbt(empty, root / "t_empty")
        print(f"full dbt build, one hour of raw:   {wall:6.2f} s wall ({elapsed:.2f} s in dbt)")
        wall, elapsed = dbt(month, root / "t_month")
        print(f"full dbt build, whole month of raw: {wall:6.2f} s wall ({elapsed:.2f} s in dbt)")

        e_wall, e_dbt = timed_hourly(empty, root / "t_empty", BENCH_HOUR, 1, REPEATS)
        m_wall, m_dbt = timed_hourly(month, root / "t_month", BENCH_HOUR, 1, REPEATS)
        w_wall, w_dbt = timed_hourly(month, root / "t_month", BENCH_HOUR - 168, 168, 1)

        print(
            f"hourly build (tag:hourly), 1 hour, empty warehouse: "
            f"{e_wall:5.2f} s wall, {e_dbt:5.2f} s in dbt (median of {REPEATS})"
        )
        print(
            f"hourly build (tag:hourly), 1 hour, month present:   "
            f"{m_wall:5.2f} s wall, {m_dbt:5.2f} s in dbt (median of {REPEATS})"
        )
        print(
            f"hourly build (tag:hourly), 168 hours in one run:    "
            f"{w_wall:5.2f} s wall, {w_dbt:5.2f} s in dbt"
        )
        ratio = m_wall / e_wall
        print(
            f"ratio month/empty: {ratio:.2f}x wall, {m_dbt / e_dbt:.2f}x in dbt "
            f"(target < 1.5x: {'met' if ratio < 1.5 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
