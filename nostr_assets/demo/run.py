"""`make demo`: the whole pipeline on a generated network, offline, beside the real warehouse.

1. Four nostr-relay servers start, each on a loopback address of its own (127.0.0.2 to
   127.0.0.5, free ports; all on 127.0.0.1 where those cannot be bound), holding a generated
   network of the 48 hours before the current hour (network.py): the demo always shows recent
   data.
2. The pipeline is pointed at them through its own settings, all under the demo's folder
   (default data/demo/): its own DuckDB file, DAGSTER_HOME, an empty bootstrap relay list (the
   real one is never crawled), NOSTR_RELAYS = the demo relays, loopback allowed, the first
   partition at the first demo hour, the dashboard's path, and a demo GeoIP database (geoip.py)
   that places each relay's address in a different city: INVENTED locations, so that the
   dashboard's map has something to show offline; the demo says so in its output and on the
   dashboard page. Without mmdb-writer (the test extra), or with every relay on 127.0.0.1,
   there is none, and the map stays empty.
3. Those 48 hours are backfilled in a few runs of the real asset graph, recorded in the demo's
   Dagster instance (the UI shows them): the catalog, the events, the relay snapshots (rebuilt
   from the NIP-66 monitor events, as for any past hour, plus a probe of the latest) and their
   geolocation (the probed hour's, the only one with addresses), every dbt model, then the
   dashboard. They run in a process of their own (backfill.py), which the demo can always stop.
4. `dagster dev` serves the UI on that instance until Ctrl-C; then, or when the UI exits, the
   relays stop. ``--no-ui`` stops after the dashboard (the tests use it).

Each run starts fresh: the previous demo's warehouse, instance and relay data are removed
(those files only). Nothing outside the demo's folder is written, except what `dagster dev`
itself writes under DAGSTER_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from nostr_assets.demo import geoip
from nostr_assets.demo.folder import DemoPaths, demo_environment, prepare_instance
from nostr_assets.demo.network import DEMO_HOURS, HOUR, DemoNetwork, build_network
from nostr_assets.demo.progress import Progress, say
from nostr_assets.demo.relays import (
    RelayError,
    RelaySpec,
    RunningRelay,
    die_with_parent,
    relay_addresses,
    relay_installed,
    start_relays,
    stop_process_groups,
    stop_relays,
)
from nostr_assets.demo.ui import (
    DEFAULT_PORT,
    Interrupted,
    install_signal_handlers,
    port_in_use,
    serve_ui,
)
from nostr_assets.settings import find_project_root


def start_backfill(paths: DemoPaths, network: DemoNetwork, env: dict[str, str]) -> subprocess.Popen:
    """The backfill's process (backfill.py): it loads the definitions now, and waits for `go`."""
    command = [
        sys.executable,
        "-m",
        "nostr_assets.demo.backfill",
        f"--start={network.start}",
        f"--end={network.end}",
        f"--log={paths.log}",
        f"--results={paths.results}",
    ]
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, env=env, start_new_session=True, preexec_fn=die_with_parent
    )


def wait_backfill(backfill: subprocess.Popen) -> int:
    """Let the backfill run; its exit code. Interrupted, it is stopped (SIGINT, then SIGKILL to
    its whole group after 5 s: Dagster only notes the SIGINT, and dbt may be stuck)."""
    assert backfill.stdin is not None
    with suppress(BrokenPipeError):  # it ended already: its exit code says how
        backfill.stdin.write(b"go\n")
        backfill.stdin.close()
    try:
        return backfill.wait()
    finally:
        stop_process_groups([backfill], signal.SIGINT, timeout=5.0)


def relay_specs(network: DemoNetwork, addresses: list[tuple[str, int]]) -> list[RelaySpec]:
    return [
        RelaySpec(
            name=relay.profile.name,
            host=host,
            port=port,
            max_limit=relay.profile.max_limit,
            nip11={
                "relay_name": document["name"],
                "relay_description": document["description"],
                "sysop_pubkey": document["pubkey"],
                "sysop_contact": document["contact"],
            },
            events=network.load_order(relay.url),
        )
        for relay, (host, port) in zip(network.relays, addresses, strict=True)
        for document in [relay.nip11()]
    ]


def run_demo(paths: DemoPaths, seed: int, hours: int, port: int | None) -> int:
    """The whole demo; returns the exit code. ``port=None``: no UI, stop after the dashboard."""
    project_root = find_project_root()
    progress = Progress()
    end = int(time.time()) // HOUR * HOUR
    paths.reset()

    with progress.step("relays", "generating the network and starting the relays"):
        addresses, own_hosts = relay_addresses(4)
        network = build_network([f"ws://{h}:{p}" for h, p in addresses], end, seed, hours)
        placed, unplaced = geoip.placements(
            [h for h, _ in addresses], [r.profile.name for r in network.relays], own_hosts
        )
        urls = [relay.url for relay in network.relays]
        env = {**os.environ, **demo_environment(paths, urls, network.start, bool(placed))}
        prepare_instance(paths.dagster_home, project_root)
        # Started first: it loads the definitions while the relays load their events and start
        # (both CPU-bound start-ups; on two cores this saves 2-3 s of the 16 s they take in turn).
        backfill = start_backfill(paths, network, env)
        try:
            if placed:  # before the backfill's `go`: its snapshot step looks for the files
                geoip.write_databases(paths.city_db, paths.asn_db, placed)
            relays: list[RunningRelay] = start_relays(relay_specs(network, addresses), paths.relays)
        except BaseException:
            stop_process_groups([backfill], signal.SIGKILL)
            raise
    try:
        # Written first: it names the relays' processes and ports for whoever checks on them.
        summary = {
            **_summary(paths, network, relays, placed),
            "geoip": (
                {"city_db": str(paths.city_db), "asn_db": str(paths.asn_db), "invented": True}
                if placed
                else {"skipped": unplaced}
            ),
            "backfill_pid": backfill.pid,
        }
        paths.summary.write_text(json.dumps(summary, indent=2))
        progress.done(
            "relays",
            f"{len(relays)} relays started with {len(network.events)} events of the "
            f"{hours} hours before {_utc(end)}",
        )
        for relay in relays:
            place = placed.get(relay.spec.host)
            print(
                f"      {relay.url}  {relay.spec.name:<8} cap {relay.spec.max_limit:>3}  "
                f"{len(relay.spec.events):>5} events"
                + (f"  {place.label} (invented)" if place else ""),
                flush=True,
            )
        if placed:
            say(
                "relays placed by a demo GeoIP database (invented locations): "
                f"{paths.geoip}, AS {min(p.asn for p in placed.values())}-"
                f"{max(p.asn for p in placed.values())} (private use)"
            )
        else:
            say(str(unplaced))
        say(f"the runs' output goes to {paths.log}")
        if wait_backfill(backfill) != 0:
            say(f"the backfill failed; its runs' output is in {paths.log}")
            return 1
        results = json.loads(paths.results.read_text())
        summary.update(
            steps={**progress.steps, **results["steps"]},
            counts=results["counts"],
            seconds_ready=progress.elapsed,
        )
        paths.summary.write_text(json.dumps(summary, indent=2))
        say(f"warehouse  {paths.warehouse}")
        # The page itself says the locations are invented; the dashboard's code knows
        # nothing of the demo (a later materialisation from the UI writes it without this).
        if placed and geoip.mark_dashboard(paths.dashboard, placed):
            say("dashboard notes that the relay locations are invented")
        say(f"dashboard  {paths.dashboard}")
        say(f"ready in {progress.elapsed:.0f} s")
        if port is None:
            return 0
        return serve_ui(project_root, env, port)
    finally:
        stop_relays(relays)
        say("relays stopped")


def _summary(
    paths: DemoPaths,
    network: DemoNetwork,
    relays: list[RunningRelay],
    placed: dict[str, geoip.DemoPlace],
) -> dict:
    return {
        "window": [_utc(network.start), _utc(network.end)],
        "warehouse": str(paths.warehouse),
        "dagster_home": str(paths.dagster_home),
        "dashboard": str(paths.dashboard),
        "events": len(network.events),
        "relays": [
            {
                "name": r.spec.name,
                "url": r.url,
                "host": r.spec.host,
                "port": r.spec.port,
                "place": (
                    {**asdict(placed[r.spec.host]), "invented": True}
                    if r.spec.host in placed
                    else None
                ),
                "pid": r.process.pid,
                "max_limit": r.spec.max_limit,
                "events": len(r.spec.events),
            }
            for r in relays
        ],
    }


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nostr_assets.demo",
        description="Start local relays with a generated network of the last 48 hours, "
        "backfill them into a demo warehouse, build every mart and the dashboard, and serve "
        "the Dagster UI. Nothing of the real warehouse or Dagster instance is touched. The "
        "relays' places on the dashboard's map come from a demo GeoIP database: invented.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=find_project_root() / "data" / "demo",
        help="the demo's folder: warehouse, DAGSTER_HOME, relays, dashboard (default data/demo)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("DAGSTER_PORT") or DEFAULT_PORT),
        help="the Dagster UI's port (default $DAGSTER_PORT, else 3000)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the network's seed (default 1)")
    parser.add_argument(
        "--hours", type=int, default=DEMO_HOURS, help=f"hours of history (default {DEMO_HOURS})"
    )
    parser.add_argument(
        "--no-ui", action="store_true", help="stop after the dashboard, without serving the UI"
    )
    args = parser.parse_args(argv)
    if not relay_installed():
        parser.exit(2, "demo: nostr-relay is not installed; run `make setup` (test extra)\n")
    if not args.no_ui and port_in_use(args.port):
        parser.exit(
            2,
            f"demo: port {args.port} is in use (is make run or make demo running?); "
            f"serve on another: make demo DAGSTER_PORT={args.port + 1}\n",
        )
    if args.hours < 1:
        parser.exit(2, "demo: --hours must be at least 1\n")
    install_signal_handlers()
    try:
        return run_demo(
            DemoPaths(args.dir.resolve()), args.seed, args.hours, None if args.no_ui else args.port
        )
    except (KeyboardInterrupt, Interrupted):
        print("demo: stopped", flush=True)
        return 130
    except RelayError as error:
        print(f"demo: the relays did not start: {error}", file=sys.stderr, flush=True)
        return 1
    except Exception as error:
        # backfill.StepFailed, a bad setting, ...: one line; the runs' output is in its log.
        print(f"demo: failed: {error}", file=sys.stderr, flush=True)
        return 1
