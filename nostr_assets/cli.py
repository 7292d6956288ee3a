"""``nostr-analytics``: crawl a time window from relays, or look at one relay, from a shell.

    nostr-analytics crawl --relays-file data/relays.txt --since -2h --until -1h --out x.jsonl
    nostr-analytics relay-info wss://relay.example.com

Results go to stdout as JSON (events to ``--out`` as JSONL); errors are one line on stderr.
Exit codes: 0 when something could be done, 1 when nothing could (every relay failed), 2 for
usage errors (bad arguments, times or URLs, or a bad NOSTR_* setting).

Defaults come from the same settings as the Dagster assets (nostr_assets/settings.py):
NOSTR_KINDS, NOSTR_CONCURRENCY, the three NOSTR_*_TIMEOUT and NOSTR_ALLOW_PRIVATE_ADDRESSES,
with the same words and checks; options given on the command line win.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from nostr_assets.lib.failures import ErrorClass
from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.crawler import crawl
from nostr_assets.lib.network.probe import probe_relay
from nostr_assets.lib.network.window_reader import WindowStats
from nostr_assets.lib.protocol.event import encode_event
from nostr_assets.lib.protocol.ingest import IngestState
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, normalize_relay_url
from nostr_assets.settings import (
    Settings,
    SettingsError,
    load_settings,
    parse_kinds,
    parse_positive_int,
    parse_seconds,
)

_RELATIVE = re.compile(r"^-(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The settings a crawl or a probe reads; the warehouse, relay list and partitions are the
# code location's business, and a bad one there must not stop a crawl from a shell.
CLI_SETTINGS = (
    "NOSTR_KINDS",
    "NOSTR_CONCURRENCY",
    "NOSTR_CONNECT_TIMEOUT",
    "NOSTR_IDLE_TIMEOUT",
    "NOSTR_TOTAL_TIMEOUT",
    "NOSTR_ALLOW_PRIVATE_ADDRESSES",
)


class UsageError(Exception):
    pass


def parse_time(text: str, now: float | None = None) -> int:
    """Unix seconds from "1704067200", "2024-01-01T00:00:00Z", "-2h"/"-30m"/"-1d" or "now"."""
    now = time.time() if now is None else now
    text = text.strip()
    if text == "now":
        return int(now)
    if text.isdigit():
        return int(text)
    match = _RELATIVE.match(text)
    if match:
        return int(now) - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a time: {text!r} (use unix seconds, ISO-8601 UTC or -2h)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # times without an offset are UTC, never local
    return int(moment.timestamp())


def _option(parse):
    """An argparse type from a settings parser: an option is checked like its variable."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None

    return convert


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nostr-analytics", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    crawl_cmd = commands.add_parser("crawl", help="fetch a time window of events from relays")
    crawl_cmd.add_argument("--relay", action="append", default=[], metavar="URL")
    crawl_cmd.add_argument("--relays-file", type=Path, help="one URL per line, # comments")
    crawl_cmd.add_argument("--since", required=True, help="start, inclusive")
    crawl_cmd.add_argument("--until", required=True, help="end, inclusive")
    crawl_cmd.add_argument("--kinds", type=_option(parse_kinds), help="e.g. 1,7 (NOSTR_KINDS)")
    crawl_cmd.add_argument("--out", type=Path, help="write the events here as JSONL")
    crawl_cmd.add_argument(
        "--concurrency", type=_option(parse_positive_int), help="default NOSTR_CONCURRENCY"
    )
    crawl_cmd.add_argument(
        "--timeout",
        type=_option(parse_seconds),
        help="seconds per relay (default NOSTR_TOTAL_TIMEOUT)",
    )
    crawl_cmd.add_argument(
        "--allow-private",
        action="store_true",
        help="allow loopback/private relay addresses (tests, own relays); "
        "or NOSTR_ALLOW_PRIVATE_ADDRESSES=true",
    )

    info_cmd = commands.add_parser("relay-info", help="probe one relay: NIP-11, reachability")
    info_cmd.add_argument("url")
    info_cmd.add_argument(
        "--timeout", type=_option(parse_seconds), help="seconds (default NOSTR_*_TIMEOUT)"
    )
    info_cmd.add_argument("--allow-private", action="store_true")
    return parser


def _join_dash_values(argv: list[str]) -> list[str]:
    """argparse reads "--since -2h" as two options; make it "--since=-2h"."""
    joined: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in ("--since", "--until") and i + 1 < len(argv):
            joined.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            joined.append(argv[i])
            i += 1
    return joined


def _read_relays(args: argparse.Namespace) -> list[str]:
    urls = list(args.relay)
    if args.relays_file is not None:
        try:
            lines = args.relays_file.read_text().splitlines()
        except OSError as error:
            raise UsageError(f"cannot read {args.relays_file}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{args.relays_file} is not UTF-8 text") from None
        urls += [line.split("#", 1)[0].strip() for line in lines]
    urls = [u for u in urls if u]
    if not urls:
        raise UsageError("no relays: give --relay URL or --relays-file FILE")
    return urls


def _config(args: argparse.Namespace, settings: Settings) -> ClientConfig:
    connect, idle, total = settings.connect_timeout, settings.idle_timeout, settings.total_timeout
    if args.timeout is not None:
        # --timeout bounds the whole relay, so no single phase may wait longer than it.
        total = args.timeout
        connect, idle = min(connect, total), min(idle, total)
    return replace(
        ClientConfig(),
        allow_private=args.allow_private or settings.allow_private_addresses,
        connect_timeout=connect,
        idle_timeout=idle,
        total_timeout=total,
        max_window_bytes=settings.max_window_mb * 2**20,
        min_relay_cap=settings.min_relay_cap,
    )


def _write_jsonl(path: Path, events) -> None:
    """Write ``events`` to ``path`` whole or not at all: a full disk leaves neither half a file
    nor a stray ``.tmp`` beside it."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        with temporary.open("wb") as out:
            for event in events:
                out.write(encode_event(event) + b"\n")
        os.replace(temporary, path)  # readers never see half a file
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` on an event loop of its own, closed after.

    Not ``asyncio.run``: after a crawl of 2,500 relays (benchmarks/bench_network_hour.py,
    Python 3.11) it took the peak RSS from 480 MB to 1,449 MB and 4.6 s more, where driving
    the same loop with ``run_until_complete`` adds nothing. The cause lies in
    ``asyncio.Runner``; it is not in our code.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _run_crawl(args: argparse.Namespace, settings: Settings) -> int:
    since, until = parse_time(args.since), parse_time(args.until)
    if since > until:
        raise UsageError(f"--since ({since}) is after --until ({until})")
    urls = _read_relays(args)
    if args.out is not None and not os.access(args.out.parent or Path("."), os.W_OK):
        # Checked before the crawl, so a long crawl is never thrown away at the end.
        raise UsageError(f"cannot write {args.out}: {args.out.parent} is not a writable folder")
    kinds = args.kinds if args.kinds is not None else settings.kinds
    kinds = list(kinds) if kinds else None
    concurrency = args.concurrency if args.concurrency is not None else settings.concurrency
    config = _config(args, settings)
    state = IngestState(max_held_bytes=config.max_held_bytes)
    done: list[WindowStats] = []
    tty = sys.stderr.isatty()

    def progress(stats: WindowStats) -> None:
        done.append(stats)
        if tty:
            sys.stderr.write(f"\r[{len(done)}/{len(urls)} relays] {len(state.events)} events")
            sys.stderr.flush()

    result = _run(
        crawl(
            urls,
            since,
            until,
            kinds,
            config=config,
            concurrency=concurrency,
            state=state,
            on_progress=progress,
        )
    )
    if tty:
        sys.stderr.write("\n")
    write_error = None
    if args.out is not None:
        try:
            _write_jsonl(args.out, result.events)
        except OSError as error:
            # Not a usage error, and the crawl is not thrown away: its summary still goes
            # to stdout, and the message says what was lost.
            write_error = f"cannot write {args.out}: {error.strerror}"
    summary = {
        "since": since,
        "until": until,
        "kinds": kinds,
        "events": len(result.events),
        "sightings": len(result.sightings),
        "rejected_urls": result.rejected_urls,
        "out": str(args.out) if args.out is not None and write_error is None else None,
        "relays": [s.to_dict() for s in result.relay_stats],
    }
    print(json.dumps(summary, indent=2, sort_keys=True))
    if write_error is not None:
        print(
            f"error: {write_error}; the {len(result.events)} events were not saved "
            "(the summary above is complete)",
            file=sys.stderr,
        )
        return 1
    succeeded = [s for s in result.relay_stats if s.error_class is None or s.events > 0]
    if not succeeded:
        failures = Counter(str(s.error_class) for s in result.relay_stats)
        failures.update(f"{ErrorClass.INVALID_URL} ({r})" for r in result.rejected_urls.values())
        detail = ", ".join(f"{n} {reason}" for reason, n in failures.most_common())
        print(f"error: no relay could be crawled ({detail})", file=sys.stderr)
        return 1
    return 0


def _run_relay_info(args: argparse.Namespace, settings: Settings) -> int:
    try:
        url = normalize_relay_url(args.url)
    except InvalidRelayUrl as error:
        raise UsageError(f"not a relay URL ({error.reason}): {args.url!r}") from None
    probe = asyncio.run(probe_relay(url, config=_config(args, settings)))
    print(json.dumps(probe.to_dict(), indent=2, sort_keys=True, default=str))
    nip11_ok = probe.nip11 is not None and probe.nip11.document is not None
    if not probe.reachable and not nip11_ok:
        hint = (
            " (use --allow-private or NOSTR_ALLOW_PRIVATE_ADDRESSES=true for your own relays)"
            if probe.error_class == ErrorClass.REFUSED_ADDRESS
            else ""
        )
        print(f"error: {url}: {probe.error_class}: {probe.error_message}{hint}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = _join_dash_values(list(sys.argv[1:] if argv is None else argv))
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its one-line usage error
        return int(exit_.code or 0)
    try:
        settings = load_settings(only=CLI_SETTINGS)
    except SettingsError as error:
        for line in error.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    try:
        if args.command == "crawl":
            return _run_crawl(args, settings)
        return _run_relay_info(args, settings)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
