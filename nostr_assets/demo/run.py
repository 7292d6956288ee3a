"""`make demo`: the whole pipeline on a generated network, offline, beside the real warehouse.

1. Four nostr-relay servers start on 127.0.0.1 (free ports), holding a generated network of the
   48 hours before the current hour (network.py): the demo always shows recent data.
2. The pipeline is pointed at them through its own settings, all under the demo's folder
   (default data/demo/): its own DuckDB file, DAGSTER_HOME, an empty bootstrap relay list (the
   real one is never crawled), NOSTR_RELAYS = the demo relays, loopback allowed, the first
   partition at the first demo hour, the dashboard's path.
3. Those 48 hours are backfilled in a few runs of the real asset graph, in this process and
   recorded in the demo's Dagster instance (the UI shows them): the catalog, the events, the
   relay snapshots (rebuilt from the NIP-66 monitor events, as for any past hour, plus a probe
   of the latest), every dbt model, then the dashboard.
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
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nostr_assets.demo.folder import DemoPaths, demo_environment, prepare_instance
from nostr_assets.demo.network import DEMO_HOURS, HOUR, DemoNetwork, build_network
from nostr_assets.demo.relays import (
    RelayError,
    RelaySpec,
    RunningRelay,
    free_ports,
    relay_installed,
    start_relays,
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


class Progress:
    """Prints each step when it starts and when it ends, with its duration; keeps the
    durations for the summary."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str, doing: str) -> Iterator[None]:
        print(f"demo: {doing} ...", flush=True)
        began = time.monotonic()
        yield
        self.steps[name] = round(time.monotonic() - began, 1)

    def done(self, name: str, message: str) -> None:
        print(f"demo: {message} ({self.steps[name]:.1f} s)", flush=True)

    @property
    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)


class Background:
    """A call run in a daemon thread; ``result()`` waits for it and re-raises its error."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._result: Any = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._result = call()
            except BaseException as error:
                self._error = error

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def _load_graph() -> Any:
    # Imported here: backfill imports Dagster (seconds), which the thread does, not the caller.
    from nostr_assets.demo.backfill import load_graph

    return load_graph()


def relay_specs(network: DemoNetwork, ports: list[int]) -> list[RelaySpec]:
    return [
        RelaySpec(
            name=relay.profile.name,
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
        for relay, port in zip(network.relays, ports, strict=True)
        for document in [relay.nip11()]
    ]


def run_demo(paths: DemoPaths, seed: int, hours: int, port: int | None) -> int:
    """The whole demo; returns the exit code. ``port=None``: no UI, stop after the dashboard."""
    project_root = find_project_root()
    progress = Progress()
    end = int(time.time()) // HOUR * HOUR
    paths.reset()

    with progress.step("relays", "generating the network and starting the relays"):
        ports = free_ports(4)
        network = build_network([f"ws://127.0.0.1:{p}" for p in ports], end, seed, hours)
        urls = [relay.url for relay in network.relays]
        # The definitions read the settings when they load: set them, then load the definitions
        # in a thread while the relays load their events and start in other processes. Both
        # are CPU-bound start-ups; on two cores this saves 2-3 s of the 16 s they take in turn.
        env = {**os.environ, **demo_environment(paths, urls, network.start)}
        os.environ.update(env)
        prepare_instance(paths.dagster_home, project_root)
        graph = Background(_load_graph)
        relays: list[RunningRelay] = start_relays(relay_specs(network, ports), paths.relays)
    try:
        # Written first: it names the relays' processes and ports for whoever checks on them.
        summary = _summary(paths, network, relays)
        paths.summary.write_text(json.dumps(summary, indent=2))
        progress.done(
            "relays",
            f"{len(relays)} relays started with {len(network.events)} events of the "
            f"{hours} hours before {_utc(end)}",
        )
        for relay in relays:
            print(
                f"      {relay.url}  {relay.spec.name:<8} cap {relay.spec.max_limit:>3}  "
                f"{len(relay.spec.events):>5} events",
                flush=True,
            )
        with progress.step("load", "loading the definitions"):
            loaded = graph.result()
        progress.done("load", "definitions loaded (while the relays started)")
        print(f"demo: the runs' output goes to {paths.log}", flush=True)
        from nostr_assets.demo import backfill

        results = backfill.run_all(loaded, network.start, network.end, progress, paths.log)
        summary.update(steps=progress.steps, counts=results, seconds_to_ui=progress.elapsed)
        paths.summary.write_text(json.dumps(summary, indent=2))
        print(f"demo: warehouse  {paths.warehouse}", flush=True)
        if results.get("dashboard_written"):
            print(f"demo: dashboard  {paths.dashboard}", flush=True)
        print(f"demo: ready in {progress.elapsed:.0f} s", flush=True)
        # Dagster's runs leave SIGTERM mapped to SIGINT's handler when they end.
        install_signal_handlers()
        if port is None:
            return 0
        return serve_ui(project_root, env, port)
    finally:
        stop_relays(relays)
        print("demo: relays stopped", flush=True)


def _summary(paths: DemoPaths, network: DemoNetwork, relays: list[RunningRelay]) -> dict:
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
                "port": r.spec.port,
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
        "the Dagster UI. Nothing of the real warehouse or Dagster instance is touched.",
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
