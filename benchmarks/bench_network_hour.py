"""One hour of the network, crawled by the CLI: a relay farm of 2,500 relays on 127.0.0.1 with
80,000 unique events in one hour (the mix of benchmarks/relay_farm.py), then

    nostr-analytics crawl --relays-file <all 2,500 URLs> --since <hour> --until <hour + 3599>
        --out <jsonl> --allow-private

as a child process at its defaults (concurrency 256, timeouts 10 / 15 / 300 s; NOSTR_* variables
of this shell are not passed on). Prints wall seconds, CPU seconds and peak RSS of the child,
completeness against the farm's manifest (events missed, by reason), how each kind of relay
ended, what the farm spent serving, and a JSON line of every figure. Targets: <= 30 s wall,
<= 400 MB peak RSS.

    python benchmarks/bench_network_hour.py                       # full size
    python benchmarks/bench_network_hour.py --relays 250 --events 8000 --rtt-scale 0.2

Run time (2 cores): before issue 9's first changes, 238 s of crawl (17.5 s of CPU, 1.4 GB
peak RSS) at concurrency 16; now 26.4 s (12.6 s of CPU, 328 MB peak RSS), every reachable
event landed either way. The slowest relay now takes 12 s; the rest is the CLI's start and
output. Add about 10 s to sign the event set the first time (cached under
benchmarks/.cache/relay_farm). The crawl is killed after --max-seconds
(default 1800): the CLI bounds each relay by its 300 s total timeout, so it ends well before.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay_farm import (
    DEFAULT_HOUR_START,
    ROOT,
    FarmSpec,
    Manifest,
    explain_misses,
    start_farm,
)

TARGET_WALL_S = 30
TARGET_RSS_MB = 400
CLI = Path(sys.executable).parent / "nostr-analytics"


def run_child(cmd: list[str], env: dict, stdout: Path, stderr: Path, max_seconds: float):
    """Run ``cmd``; (exit code or None when killed, wall seconds, its own resource usage)."""
    started = time.perf_counter()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=err)
        deadline = started + max_seconds
        killed = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline and not killed:
                proc.kill()
                killed = True
            time.sleep(0.1)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    wall = time.perf_counter() - started
    return (None if killed else proc.returncode), wall, usage


def clean_env(**extra: str) -> dict[str, str]:
    """This shell's environment without NOSTR_* settings, so the child runs at its defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOSTR_")}
    env["PATH"] = f"{CLI.parent}:{env.get('PATH', '')}"
    env.update(extra)
    return env


class _Id(msgspec.Struct):
    id: str


def landed_ids(jsonl: Path) -> set[str]:
    # Not str.splitlines: event content may hold U+2028, which JSON leaves unescaped.
    return {e.id for e in msgspec.json.Decoder(_Id).decode_lines(jsonl.read_bytes())}


def relay_outcome(stats: dict) -> str | None:
    if stats.get("error_class"):
        return stats["error_class"]
    return "truncated" if stats.get("possibly_truncated") else None


def ended_by_behaviour(manifest: Manifest, outcomes: dict[str, str | None]) -> dict[str, dict]:
    table: dict[str, Counter] = {}
    for relay in manifest.relays:
        end = outcomes.get(relay["url"], "not crawled")
        table.setdefault(relay["behaviour"], Counter())[str(end or "ok")] += 1
    return {behaviour: dict(ends) for behaviour, ends in sorted(table.items())}


def incomplete_serving_relays(manifest: Manifest, per_relay_events: dict[str, int]) -> dict:
    """Serving relays that gave fewer distinct window events than they hold, by behaviour."""
    short: Counter[str] = Counter()
    for relay in manifest.relays:
        if not relay["serves"]:
            continue
        held = sum(1 for e in relay["events"] if manifest.in_window(e))
        if per_relay_events.get(relay["url"], 0) < held:
            short[relay["behaviour"]] += 1
    return dict(short)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relays", type=int, default=2500)
    parser.add_argument("--events", type=int, default=80_000)
    parser.add_argument(
        "--concurrency", type=int, help="the CLI's --concurrency (default: its own)"
    )
    parser.add_argument("--rtt-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=1800)
    parser.add_argument("--workdir", type=Path, help="keep the farm's files and the output here")
    args = parser.parse_args()

    spec = FarmSpec(
        relays=args.relays,
        events=args.events,
        hour_start=DEFAULT_HOUR_START,
        seed=args.seed,
        rtt_scale=args.rtt_scale,
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        started = time.perf_counter()
        farm = start_farm(spec, workdir)
        farm_start_s = time.perf_counter() - started
        manifest = farm.manifest
        summary = manifest.data["summary"]
        print(
            f"farm: {spec.relays:,} relays, {summary['window_events']:,} events in the hour "
            f"(+{summary['outside_events']} just outside), {summary['served_copies']:,} copies on "
            f"serving relays, started in {farm_start_s:.1f} s"
        )
        print(
            f"  one relay only {summary['single_relay_share']:.0%}, top 20 hold "
            f"{summary['top20_share']:.0%}, top 100 {summary['top100_share']:.0%}; "
            f"behaviours {summary['behaviours']}"
        )
        out = workdir / "crawl.jsonl"
        cmd = [
            str(CLI),
            "crawl",
            "--relays-file",
            str(farm.relays_file),
            "--since",
            str(spec.since),
            "--until",
            str(spec.since + 3599),
            "--out",
            str(out),
            "--allow-private",
        ]
        if args.concurrency:
            cmd += ["--concurrency", str(args.concurrency)]
        print("running: " + " ".join(cmd[1:]), flush=True)
        try:
            code, wall, usage = run_child(
                cmd, clean_env(), workdir / "crawl.json", workdir / "crawl.err", args.max_seconds
            )
        finally:
            farm_stats = farm.stop()
        try:
            report = json.loads((workdir / "crawl.json").read_text())
        except ValueError:  # killed, or it failed before printing its summary
            report = {}
        landed = set()
        if out.exists():
            landed = landed_ids(out)
        per_relay = {s["relay_url"]: s for s in report.get("relays", [])}
        outcomes = {url: relay_outcome(s) for url, s in per_relay.items()}
        completeness = explain_misses(
            manifest, landed, lambda url, _: outcomes.get(url, "not crawled")
        )
        if code != 0:
            err = (workdir / "crawl.err").read_text()[-2000:]
            print(f"crawl exited {code} (None: killed after {args.max_seconds} s)\n{err}")

    cpu = usage.ru_utime + usage.ru_stime
    rss_mb = usage.ru_maxrss / 1024
    events_sent = farm_stats.get("events_sent", 0)
    serve_cpu = farm_stats.get("serve_cpu_ms", 0) / 1000
    figures = {
        "relays": spec.relays,
        "events": summary["window_events"],
        "concurrency": args.concurrency or "default",
        "rtt_scale": spec.rtt_scale,
        "exit_code": code,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(rss_mb),
        "cpu_us_per_copy_received": round(cpu / max(1, events_sent) * 1e6, 1),
        **completeness,
        "incomplete_serving_relays": incomplete_serving_relays(
            manifest, {u: s.get("events", 0) for u, s in per_relay.items()}
        ),
        "relay_ends_by_behaviour": ended_by_behaviour(manifest, outcomes),
        "farm_events_sent": events_sent,
        "farm_serve_cpu_s": round(serve_cpu, 2),
        "farm_cpu_us_per_event_sent": round(serve_cpu / max(1, events_sent) * 1e6, 2),
        "farm_start_s": round(farm_start_s, 1),
        "farm_bytes_sent": farm_stats.get("bytes_sent", 0),
        "farm_connections": farm_stats.get("connections", 0),
        "farm_reqs": farm_stats.get("reqs", 0),
    }
    scaled = "" if spec.relays >= 2500 and spec.events >= 80_000 else "; a scaled run"
    ok = "ok" if wall <= TARGET_WALL_S else "OVER"
    print(f"wall:      {wall:7.1f} s   (target <= {TARGET_WALL_S} s at full size: {ok}{scaled})")
    print(f"cpu:       {cpu:7.1f} s   (user+sys of the crawl process)")
    ok = "ok" if rss_mb <= TARGET_RSS_MB else "OVER"
    print(f"peak RSS:  {rss_mb:7.0f} MB  (target <= {TARGET_RSS_MB} MB at full size: {ok}{scaled})")
    c = completeness
    print(
        f"events:    {c['landed_expected']:,} of {c['expected']:,} expected landed, "
        f"{c['missed']:,} missed; {c['only_on_non_serving_relays']:,} more are held only by "
        "relays that serve nothing (not expected)"
    )
    for reason, n in completeness["missed_by_reason"].items():
        print(f"  missed: {n:6,}  {reason}")
    print(
        f"  landed outside the window: {completeness['landed_outside_window_or_unknown']}, "
        f"landed though no serving relay holds it: "
        f"{completeness['landed_though_no_serving_relay_holds_it']}"
    )
    short = figures["incomplete_serving_relays"]
    print(f"serving relays that gave fewer events than they hold: {short}")
    print("how relays ended, by behaviour:")
    for behaviour, ends in figures["relay_ends_by_behaviour"].items():
        print(f"  {behaviour:13} {ends}")
    print(
        f"farm: {events_sent:,} events sent for {serve_cpu:.2f} s of CPU "
        f"({figures['farm_cpu_us_per_event_sent']} us per event, handshakes included)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
