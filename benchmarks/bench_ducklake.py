"""A week's landing on the DuckDB file (one writer) and on DuckLake with 1, 2 and 4 writers.

The same synthetic week (benchmarks/synthetic.py: 168 hours of signed events in realistic kind
shares, each seen on three relays) is landed with ``land_window``, the function raw/nostr_events
lands with, in the windows that asset cuts (up to 24 hours and 5,000 events per transaction),
with their fetch stats:

- into a new DuckDB file by one process (the file allows one writer: that is today's backfill);
- into a new DuckLake (SQLite catalog, Parquet files in a folder) by 1, 2 and 4 processes, each
  a contiguous share of the week's days, as an events run shares its range between
  NOSTR_DUCKLAKE_WRITERS processes;
- the same on a Postgres catalog when Debian's postgresql can be started here (as the tests
  start it: a private folder and port, stopped at the end).

Only landing is timed: every writer builds its rows and connects first, then all start together
at a barrier, so the figures show whether landing scales with writers, which is the bound once
fetching runs in parallel. Conflicts between writers are retried by landing itself; the count
is printed. After each run the lake's rows are checked against the file's (same events, same
sightings). Run: `python benchmarks/bench_ducklake.py [--events-per-hour N] [--writers 1,2,4]
[--catalogs sqlite,postgres] [--set ducklake_setting=value ...]`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import duckdb  # noqa: E402
from synthetic import load_or_build  # noqa: E402

from nostr_assets.lib.network.hourly_fetch import (  # noqa: E402
    MAX_EVENTS_PER_BATCH,
    MAX_HOURS_PER_BATCH,
)
from nostr_assets.lib.warehouse.event_landing import land_window  # noqa: E402
from nostr_assets.lib.warehouse.lake import connect_lake  # noqa: E402
from nostr_assets.lib.warehouse.raw_table import conflicts_retried  # noqa: E402
from nostr_assets.lib.warehouse.schema import ensure_raw_tables  # noqa: E402
from nostr_assets.lib.warehouse.tables.event_relay_sightings import sighting_rows  # noqa: E402
from nostr_assets.lib.warehouse.tables.nostr_events import event_rows  # noqa: E402

WEEK_START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
HOURS = 168
HOUR = timedelta(hours=1)
RELAYS = [f"wss://relay{i}.example" for i in range(3)]


def week_events(events_per_hour: int):
    start = int(WEEK_START.timestamp())
    return load_or_build(events_per_hour * HOURS, start=start, span=HOURS * 3600)


def landings(events, day: datetime) -> list[tuple[datetime, datetime]]:
    """A day's hours cut into landing windows as raw/nostr_events cuts them (at most
    MAX_HOURS_PER_BATCH hours and, beyond the first, MAX_EVENTS_PER_BATCH events)."""
    counts = Counter(int(e.created_at // 3600) for e in events)
    windows: list[list[datetime]] = []
    total = 0
    for hour in (day + i * HOUR for i in range(24)):
        n = counts[int(hour.timestamp()) // 3600]
        if (
            not windows
            or len(windows[-1]) >= MAX_HOURS_PER_BATCH
            or total + n > MAX_EVENTS_PER_BATCH
        ):
            windows.append([])
            total = 0
        windows[-1].append(hour)
        total += n
    return [(w[0], w[-1] + HOUR) for w in windows]


def window_rows(events, start: datetime, end: datetime):
    """The rows landing gets for one window: its events, each seen on every relay a second
    after it was made, and one fetch-stats row per relay and hour."""
    lo, hi = start.timestamp(), end.timestamp()
    batch = [e for e in events if lo <= e.created_at < hi]
    hours = [start + i * HOUR for i in range(int((hi - lo) // 3600))]
    seen = {e.id: e.created_at + 1.0 for e in batch}
    created = {e.id: e.created_at for e in batch}
    pairs = [(e.id, relay, e.created_at + 1.0 + i) for e in batch for i, relay in enumerate(RELAYS)]
    stats = [
        {
            "created_hour": hour,
            "relay_url": relay,
            "fetched_at": end + HOUR,
            "events": len(batch),
            "duplicates": 0,
            "invalid_ids": 0,
            "invalid_signatures": 0,
            "invalid_other": 0,
            "bad_frames": 0,
            "pages": 1,
            "possibly_truncated": False,
            "eose_received": True,
            "error_class": None,
            "bytes_received": 0,
            "stray_events": 0,
        }
        for hour in hours
        for relay in RELAYS
    ]
    return event_rows(batch, seen), sighting_rows(pairs, created), stats


def _connect(target: dict) -> duckdb.DuckDBPyConnection:
    if target["kind"] == "file":
        return duckdb.connect(target["path"], config={"checkpoint_threshold": "256MB"})
    conn = connect_lake(target["catalog"], target["data_path"])
    for name, value in target.get("settings", {}).items():
        conn.execute(f"set {name} = {value}")
    return conn


def _writer(target: dict, days: list[datetime], events_per_hour: int, barrier, results) -> None:
    events = week_events(events_per_hour)
    windows = [w for day in days for w in landings(events, day)]
    rows = [(start, end, *window_rows(events, start, end)) for start, end in windows]
    conn = _connect(target)
    # As raw/nostr_events' writer processes do: the writers share the machine's cores.
    conn.execute(f"set threads = {max(1, (os.cpu_count() or 1) // target['writers'])}")
    barrier.wait()
    started = time.perf_counter()
    for start, end, events_cols, sightings_cols, stats in rows:
        land_window(conn, start, end, events_cols, sightings_cols, stats)
    conn.close()
    results.put((time.perf_counter() - started, conflicts_retried()))


def land_week(target: dict, writers: int, events_per_hour: int) -> tuple[float, int]:
    """Wall seconds for ``writers`` processes to land the week into ``target``, and the
    conflicts they retried."""
    target = {**target, "writers": writers}
    conn = _connect(target)
    ensure_raw_tables(conn)
    conn.close()
    days = [WEEK_START + timedelta(days=i) for i in range(HOURS // 24)]
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [
        ctx.Process(
            target=_writer,
            args=(
                target,
                days[i * len(days) // writers : (i + 1) * len(days) // writers],
                events_per_hour,
                barrier,
                results,
            ),
        )
        for i in range(writers)
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    started = time.perf_counter()
    outcomes = [results.get() for _ in procs]
    wall = time.perf_counter() - started
    for proc in procs:
        proc.join()
        if proc.exitcode:
            sys.exit(f"a writer failed (exit {proc.exitcode})")
    return wall, sum(conflicts for _, conflicts in outcomes)


def fingerprint(target: dict) -> tuple:
    conn = _connect(target)
    try:
        return conn.execute(
            """
            select (select count(*) from raw.nostr_events),
                   (select sum(hash(event_id, first_seen_at, relay_count)) from raw.nostr_events),
                   (select count(*) from raw.event_relay_sightings),
                   (select sum(hash(event_id, relay_url, first_seen_at))
                    from raw.event_relay_sightings),
                   (select count(*) from raw.relay_fetch_stats)
            """
        ).fetchone()
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events-per-hour", type=int, default=2000)
    parser.add_argument("--writers", default="1,2,4")
    parser.add_argument("--catalogs", default="sqlite,postgres", help="which lake catalogs")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    counts = [int(n) for n in args.writers.split(",")]
    week_events(args.events_per_hour)  # build (or read) the cached week once, untimed
    work = Path(tempfile.mkdtemp(prefix="bench_ducklake_"))
    postgres = None
    try:
        print(
            f"A week: {HOURS} hours x {args.events_per_hour} events, each on {len(RELAYS)} relays; "
            f"{os.cpu_count()} CPUs"
        )
        file_target = {"kind": "file", "path": str(work / "week.duckdb")}
        base, _ = land_week(file_target, 1, args.events_per_hour)
        expected = fingerprint(file_target)
        print(f"duckdb file, 1 writer: {base:7.2f} s  ({HOURS / base:6.1f} hours/s)")
        catalogs = [("sqlite", lambda n: f"sqlite:{work / f'catalog{n}.sqlite'}")]
        wanted = set(args.catalogs.split(","))
        if "postgres" in wanted:
            from lake_servers import PostgresServer, postgres_bin_dir, postgres_user

            bin_dir, user = postgres_bin_dir(), postgres_user()
            if bin_dir is None or user is None:
                print("postgres catalog skipped: no Postgres binaries, or no user to run them")
            else:
                work.chmod(0o755)  # the server runs as another user, inside this folder
                (work / "postgres").mkdir()
                postgres = PostgresServer(bin_dir, work / "postgres", user)
                why = postgres.start()
            if postgres is not None and why:
                print(f"postgres catalog skipped: {why}")
            elif postgres is not None:
                catalogs.append(
                    ("postgres", lambda n: postgres.catalog(postgres.create_database()))
                )
        for name, catalog in [c for c in catalogs if c[0] in wanted]:
            one = None
            for n in counts:
                target = {
                    "kind": "lake",
                    "catalog": catalog(n),
                    "data_path": f"{work / f'{name}_files{n}'}/",
                    "settings": dict(x.split("=") for x in args.set),
                }
                wall, conflicts = land_week(target, n, args.events_per_hour)
                same = fingerprint(target) == expected
                one = one or wall
                print(
                    f"ducklake ({name} catalog), {n} writer(s): {wall:7.2f} s  "
                    f"({HOURS / wall:6.1f} hours/s)  {one / wall:4.2f}x one lake writer, "
                    f"{base / wall:4.2f}x the file; conflicts retried: {conflicts}; "
                    f"rows equal the file's: {'yes' if same else 'NO'}"
                )
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
