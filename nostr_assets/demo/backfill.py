"""The demo's backfill: the real asset graph over the demo's hours, in five runs recorded in the
demo's Dagster instance, so the UI shows them as if launched there.

One run per stage rather than one for everything, so each stage's progress and duration can
be printed as it ends: catalog, events (every hour in one run: the single-run backfill
policy), relay snapshots, every dbt model, the dashboard. Runs execute in this process
(`execute_in_process`): a `dagster asset materialize` per stage would load the definitions
and the dbt manifest again each time (about 7 s here).

It is a process of its own (``python -m nostr_assets.demo.backfill``, started by run.py with
the demo's settings in its environment), for two reasons. Dagster takes over SIGINT and SIGTERM
during a run and only notes them, and a dbt subprocess killed by Ctrl-C left its step waiting
for ever (seen here): in a process group of its own, the demo can always stop it, with SIGKILL
if need be. And it loads the definitions (about 7 s) while the demo's relays start; it waits
for `go` on its standard input before its first run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from nostr_assets.demo.progress import Progress, say
from nostr_assets.settings import PARTITION_FORMAT, load_settings

HOUR = 3600
EVENT_TABLES = [
    dg.AssetKey(["raw", "nostr_events"]),
    dg.AssetKey(["raw", "event_relay_sightings"]),
    dg.AssetKey(["raw", "relay_fetch_stats"]),
]
CATALOG = dg.AssetKey(["raw", "relay_catalog"])
SNAPSHOTS = dg.AssetKey(["raw", "relay_snapshots"])
GEOLOCATIONS = dg.AssetKey(["raw", "relay_geolocations"])
DASHBOARD = dg.AssetKey(["reports", "network_dashboard"])


class StepFailed(RuntimeError):
    """A run of the backfill failed; the message names its failed steps and their errors."""


@contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send everything this process and its children write to ``log``: Dagster's event log
    lines and dbt's output (about 2,000 lines for the demo) would bury the demo's progress."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with log.open("ab") as out:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def _hour_key(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(PARTITION_FORMAT)


def _query(sql: str) -> list[tuple]:
    with duckdb.connect(str(load_settings().duckdb_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _scalar(sql: str) -> Any:
    return _query(sql)[0][0]


@dataclass(frozen=True)
class Graph:
    definitions: dg.Definitions
    job: dg.JobDefinition  # every asset; a run selects some
    instance: dg.DagsterInstance
    assets: list[dg.AssetsDefinition]


def load_graph() -> Graph:
    """The code location as `dagster dev` loads it, and the Dagster instance of DAGSTER_HOME.

    The demo's settings must be in the environment already: the definitions read them when
    they load (about 7 s, mostly imports and the dbt manifest).
    """
    from nostr_assets.definitions import defs

    definitions = defs()
    return Graph(
        definitions,
        definitions.resolve_implicit_global_asset_job_def(),
        dg.DagsterInstance.get(),
        [a for a in definitions.assets or [] if isinstance(a, dg.AssetsDefinition)],
    )


def run_all(graph: Graph, start: int, end: int, progress: Progress, log: Path) -> dict[str, Any]:
    """Materialise everything for the hours [start, end); returns the counts it printed.
    The runs' own output goes to ``log``.

    Raises StepFailed when a run fails: its steps' errors are in the message, the whole story
    in ``log`` and in the run in the demo's Dagster instance.
    """
    definitions, assets = graph.definitions, graph.assets
    window = {
        "dagster/asset_partition_range_start": _hour_key(start),
        "dagster/asset_partition_range_end": _hour_key(end - HOUR),
    }

    def run(keys: Sequence[dg.AssetKey], tags: dict[str, str] | None) -> None:
        with output_to(log):
            result = graph.job.execute_in_process(
                instance=graph.instance,
                asset_selection=list(keys),
                tags=tags,
                raise_on_error=False,
            )
        if not result.success:
            failures = [
                f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
                for event in result.all_events
                if event.is_step_failure
                and event.step_failure_data.error is not None
                and event.step_key is not None
            ]
            raise StepFailed(
                f"run {result.run_id} failed (its log: {log}): "
                + ("; ".join(failures) or "no step failed")
            )

    counts: dict[str, Any] = {}
    with progress.step("catalog", "filling the relay catalog"):
        run([CATALOG], None)
    counts["catalog_relays"] = _scalar("select count(*) from raw.relay_catalog")
    progress.done("catalog", f"relay catalog: {counts['catalog_relays']} relays")

    hours = (end - start) // HOUR
    with progress.step("events", f"backfilling {hours} hours of events (one run)"):
        run(EVENT_TABLES, window)
    counts["events"] = _scalar("select count(*) from raw.nostr_events")
    counts["sightings"] = _scalar("select count(*) from raw.event_relay_sightings")
    counts["events_by_relay"] = dict(
        _query("select relay_url, count(*) from raw.event_relay_sightings group by 1 order by 1")
    )
    progress.done(
        "events",
        f"{hours} hours backfilled: {counts['events']} events, {counts['sightings']} copies "
        f"from {len(counts['events_by_relay'])} relays",
    )

    observations = [SNAPSHOTS]
    # Geolocation needs a .mmdb file; without one the step would fail the run. The demo writes
    # its own (geoip.py: invented places for its loopback addresses, which no real database
    # places) unless mmdb-writer is missing. Over the whole window, like the snapshots: only
    # the probed hour has connected addresses, so only it gets rows.
    geoip = (definitions.resources or {}).get("geoip")
    has_geoip = geoip is not None and Path(geoip.city_path()).is_file()
    if has_geoip:
        observations.append(GEOLOCATIONS)
    with progress.step("snapshots", "relay snapshots (NIP-66 reports, and a probe now)"):
        run(observations, window)
    counts["snapshots"] = dict(
        _query("select observation_source, count(*) from raw.relay_snapshots group by 1")
    )
    parts = ", ".join(f"{n} from {source}" for source, n in sorted(counts["snapshots"].items()))
    located = "; geolocation skipped (no .mmdb: `make geoip`)"
    if has_geoip:
        counts["geolocated"] = dict(
            _query(
                "select country_code, count(distinct relay_url) from raw.relay_geolocations "
                "where country_code is not null group by 1 order by 1"
            )
        )
        editions = [
            e for (e,) in _query("select distinct city_db_edition from raw.relay_geolocations")
        ]
        located = (
            f"; {sum(counts['geolocated'].values())} relays geolocated in "
            f"{', '.join(counts['geolocated']) or 'no country'}"
            + (f" by {', '.join(sorted(editions))}" if editions else "")
        )
    progress.done("snapshots", f"relay snapshots: {parts}{located}")

    dbt_keys = [
        key for a in assets if any("dbt" in spec.kinds for spec in a.specs) for key in a.keys
    ]
    with progress.step("marts", f"building {len(dbt_keys)} dbt models and their tests"):
        run(dbt_keys, window)
    counts["marts"] = {
        name: _scalar(f"select count(*) from main.{name}")
        for (name,) in _query(
            "select table_name from information_schema.tables "
            "where table_schema = 'main' and (table_name like 'fct_%' or table_name like 'dim_%') "
            "order by 1"
        )
    }
    counts["zapped_sats"] = float(
        _scalar("select coalesce(sum(claimed_amount_sats), 0) from main.fct_zaps_daily")
    )
    counts["articles"] = int(_scalar("select coalesce(sum(articles), 0) from fct_long_form_daily"))
    empty = sorted(name for name, n in counts["marts"].items() if n == 0)
    progress.done(
        "marts",
        f"{len(counts['marts'])} marts built ({counts['zapped_sats']:,.0f} sats zapped, "
        f"{counts['articles']} articles)" + (f"; empty: {', '.join(empty)}" if empty else ""),
    )

    with progress.step("dashboard", "writing the dashboard"):
        run([DASHBOARD], None)  # one file over every mart: not partitioned
    progress.done("dashboard", "dashboard written")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nostr_assets.demo.backfill")
    parser.add_argument("--start", type=int, required=True, help="first hour, unix seconds")
    parser.add_argument("--end", type=int, required=True, help="end of the last hour")
    parser.add_argument("--log", type=Path, required=True, help="where the runs' output goes")
    parser.add_argument("--results", type=Path, required=True, help="steps and counts, JSON")
    args = parser.parse_args(argv)
    began = time.monotonic()
    with output_to(args.log):
        graph = load_graph()
    loaded = time.monotonic() - began
    if sys.stdin.readline().strip() != "go":  # the relays did not start: nothing to do
        return 1
    say(f"definitions loaded ({loaded:.1f} s, while the relays started)")
    progress = Progress()
    progress.steps["definitions"] = round(loaded, 1)
    try:
        counts = run_all(graph, args.start, args.end, progress, args.log)
    except StepFailed as failed:
        say(f"failed: {failed}")
        return 1
    args.results.write_text(json.dumps({"steps": progress.steps, "counts": counts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
