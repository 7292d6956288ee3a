"""raw/nostr_events, raw/event_relay_sightings and raw/relay_fetch_stats, one hour at a time."""

import asyncio
import multiprocessing
import os
import queue
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from nostr_assets.defs.events.diagnosis import explain_unreached
from nostr_assets.defs.freshness import HOURLY_FRESHNESS
from nostr_assets.defs.partitions import EVENTS_RUN, hourly_partitions, single_run
from nostr_assets.defs.relays.relay_list import (
    contactable_relays,
    guarded_relays_skipped,
    report_guarded,
)
from nostr_assets.defs.resources import NostrCrawlerResource, RelaySourcesResource
from nostr_assets.defs.writers import EVENT_WRITERS, RAW_WRITERS_POOL
from nostr_assets.lib.network.hourly_fetch import (
    HOUR,
    CrawledHour,
    LandedBatch,
    fetch_hours,
    hours_between,
)
from nostr_assets.lib.warehouse.event_landing import crawl_rows, land_window
from nostr_assets.lib.warehouse.raw_table import conflicts_retried
from nostr_assets.lib.warehouse.tables.relay_fetch_stats import fetch_stats_rows

EVENTS = dg.AssetKey(["raw", "nostr_events"])
SIGHTINGS = dg.AssetKey(["raw", "event_relay_sightings"])
FETCH_STATS = dg.AssetKey(["raw", "relay_fetch_stats"])

# Below this share of verifying events, something is broken (our verifier, or a relay feeding
# forgeries at scale) and the marts must not be rebuilt from the partition.
MIN_VALID_SHARE = 0.5


def _worst_relays_markdown(stats: list[dict], limit: int = 10) -> str:
    def badness(s: dict) -> tuple:
        return (s["error_class"] is not None, s["invalid"], s["truncated"], -s["events"])

    lines = [
        "| relay | events | invalid | bad frames | truncated hours | error |",
        "|---|---|---|---|---|---|",
    ]
    for s in sorted(stats, key=badness, reverse=True)[:limit]:
        lines.append(
            f"| {s['relay_url']} | {s['events']} | {s['invalid']} | {s['bad_frames']} | "
            f"{s['truncated']} | {s['error_class'] or ''} |"
        )
    return "\n".join(lines)


def _raw_event_spec(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    """The three tables one crawl fills share everything but their key and grain."""
    return dg.AssetSpec(
        key,
        description=description,
        deps=[["raw", "relay_catalog"]],
        kinds={"python", "duckdb"},
        group_name="events",
        tags=EVENTS_RUN,
        freshness_policy=HOURLY_FRESHNESS,
    )


@single_run(
    dg.multi_asset,
    specs=[
        _raw_event_spec(
            EVENTS,
            "One row per verified event id (id and BIP-340 signature checked), deduplicated "
            "across relays, partitioned by the UTC hour of created_at.",
        ),
        _raw_event_spec(
            SIGHTINGS,
            "One row per event id and relay that served it, with when it was first seen there: "
            "who holds what, and the replication factor.",
        ),
        _raw_event_spec(
            FETCH_STATS,
            "One row per relay and hour fetched: events, duplicates, invalid events, bad frames, "
            "pages, truncation, EOSE, bytes and timings of the latest fetch.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "valid_event_share",
            asset=EVENTS,
            blocking=True,
            description=f"At least {MIN_VALID_SHARE:.0%} of the events relays served verify.",
        ),
        dg.AssetCheckSpec(
            "relays_reached",
            asset=EVENTS,
            blocking=True,
            description="At least one relay answered every hour of the window.",
        ),
    ],
    partitions_def=hourly_partitions,
    pool=RAW_WRITERS_POOL,
    can_subset=False,
)
def nostr_events(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    crawler: NostrCrawlerResource,
    relay_sources: RelaySourcesResource,
):
    """Fetch every event whose created_at falls in each hour of the run's window from every
    contactable relay in the catalog, page by page until complete, verified and deduplicated."""
    window = context.partition_time_window
    hours = hours_between(window.start, window.end)
    # One connection for the whole run: closing a DuckDB file connection checkpoints it, which
    # cost 0.4 s per hour when every hour opened its own (bench_backfill). Other writers wait
    # for the `duckdb` pool anyway; readers retry on their next tick.
    with duckdb.get_connection() as conn:
        listed = relay_sources.listed()
        relays = contactable_relays(conn, crawler.allow_private_addresses, listed)
        guarded = guarded_relays_skipped(conn, crawler.allow_private_addresses, listed)
        guard_metadata = report_guarded(context, guarded)
        if not relays:
            raise dg.Failure(
                "No relay can be contacted: the catalog is empty or every relay is guarded "
                "or retired. "
                "Materialise raw/relay_catalog first, or set NOSTR_RELAYS."
            )
        writers = min(EVENT_WRITERS, len(hours))
        context.log.info(
            f"Fetching {len(hours)} hour(s) from {len(relays)} relays"
            + (f" in {writers} writer processes" if writers > 1 else "")
        )
        if writers > 1:
            summary = _fetch_and_land_in_processes(context, duckdb, relays, hours, crawler, writers)
        else:
            summary = _fetch_and_land(context.log.info, conn, relays, hours, crawler)
    yield from _results(summary, len(hours), context.partition_keys, guard_metadata)


_RELAY_COUNTS = ("events", "invalid", "bad_frames", "truncated")


@dataclass
class _Summary:
    totals: Counter = field(default_factory=Counter)
    invalid: Counter = field(default_factory=Counter)
    per_relay: dict[str, dict] = field(default_factory=dict)
    hours_without_relay: list[str] = field(default_factory=list)
    # Error classes of the relays in the hours no relay answered: the clue to the cause.
    unreached_errors: Counter = field(default_factory=Counter)
    fetch_wall_seconds: float = 0.0
    crawl_seconds: float = 0.0
    land_seconds: float = 0.0

    def add(self, batch: LandedBatch) -> None:
        self.totals["events"] += batch.events
        self.totals["sightings"] += batch.sightings
        self.land_seconds += batch.land_seconds
        self.totals["land_transactions"] += 1
        for crawled in batch.hours:
            self.crawl_seconds += crawled.crawl_seconds
            self._add_relay_stats(crawled)

    def merge(self, other: "_Summary") -> None:
        """Add another writer's summary (of other hours) to this one."""
        self.totals.update(other.totals)
        self.invalid.update(other.invalid)
        self.hours_without_relay = sorted(self.hours_without_relay + other.hours_without_relay)
        self.unreached_errors.update(other.unreached_errors)
        self.crawl_seconds += other.crawl_seconds
        self.land_seconds += other.land_seconds
        for url, theirs in other.per_relay.items():
            row = self.per_relay.setdefault(url, {**theirs, **dict.fromkeys(_RELAY_COUNTS, 0)})
            for name in _RELAY_COUNTS:
                row[name] += theirs[name]
            row["error_class"] = theirs["error_class"] or row["error_class"]

    def _add_relay_stats(self, crawled: CrawledHour) -> None:
        stats = crawled.result.relay_stats
        if not any(s.eose_received or not s.error_class for s in stats):
            self.hours_without_relay.append(
                hourly_partitions.get_partition_key_for_timestamp(crawled.hour.timestamp())
            )
            self.unreached_errors.update(s.error_class for s in stats)
        for s in stats:
            self.invalid.update(s.invalid)
            row = self.per_relay.setdefault(
                s.relay_url,
                {
                    "relay_url": s.relay_url,
                    "events": 0,
                    "invalid": 0,
                    "bad_frames": 0,
                    "truncated": 0,
                    "error_class": None,
                },
            )
            row["events"] += s.events
            row["invalid"] += sum(s.invalid.values())
            row["bad_frames"] += sum(s.bad_frames.values())
            row["truncated"] += int(s.possibly_truncated)
            row["error_class"] = s.error_class or row["error_class"]


def _fetch_and_land(
    log: Callable[[str], Any], conn, relays, hours, crawler: NostrCrawlerResource
) -> _Summary:
    def land(batch: list[CrawledHour]) -> tuple[int, int]:
        events, sightings = crawl_rows([crawled.result for crawled in batch])
        stats = [
            row
            for c in batch
            for row in fetch_stats_rows(c.hour, c.fetched_at, c.result.relay_stats)
        ]
        return land_window(conn, batch[0].hour, batch[-1].hour + HOUR, events, sightings, stats)

    summary = _Summary()
    started = time.perf_counter()
    conflicts_before = conflicts_retried()
    batches = _run_async(
        fetch_hours(
            relays,
            hours,
            crawl_window=crawler.window_crawler(),
            concurrency=crawler.concurrency,
            hours_in_flight=crawler.hours_in_flight,
            max_span_events=crawler.max_span_events,
            land=land,
        )
    )
    done = 0
    # Each log line is an event-log write: about 20 progress lines, whatever the range.
    log_every = max(1, len(hours) // 20)
    for batch in batches:
        summary.add(batch)
        previous, done = done, done + len(batch.hours)
        if done // log_every != previous // log_every or done == len(hours):
            last = batch.hours[-1]
            log(
                f"[{done}/{len(hours)} hours] up to {last.hour:%Y-%m-%d %H:00}: "
                f"{summary.totals['events']} events stored, "
                f"{sum(1 for s in last.result.relay_stats if s.error_class)} relays failed"
            )
    summary.fetch_wall_seconds = time.perf_counter() - started
    summary.totals["conflicts_retried"] = conflicts_retried() - conflicts_before
    return summary


def _configuration(resource: dg.ConfigurableResource) -> tuple[type, dict[str, Any]]:
    """A resource as its class and field values: what a writer process rebuilds it from (a
    resource bound to a run does not pickle)."""
    cls = type(resource)
    return cls, {name: getattr(resource, name) for name in cls.model_fields}


def _land_share(
    warehouse: tuple[type, dict[str, Any]],
    crawler: tuple[type, dict[str, Any]],
    relays: list[str],
    hours: list[datetime],
    progress: Any,
    threads: int,
) -> _Summary:
    """One writer process: crawl and land ``hours`` with a connection of its own, DuckDB on
    ``threads`` threads (the writers share the machine's cores); its progress lines go to
    ``progress`` (a queue the step logs from)."""
    prefix = f"[writer {hours[0]:%Y-%m-%d %H:00}..{hours[-1]:%Y-%m-%d %H:00}] "
    (warehouse_cls, warehouse_fields), (crawler_cls, crawler_fields) = warehouse, crawler
    with warehouse_cls(**warehouse_fields).get_connection() as conn:
        conn.execute(f"set threads = {threads}")
        return _fetch_and_land(
            lambda line: progress.put(prefix + line),
            conn,
            relays,
            hours,
            crawler_cls(**crawler_fields),
        )


def _fetch_and_land_in_processes(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBResource,
    relays: list[str],
    hours: list[datetime],
    crawler: NostrCrawlerResource,
    writers: int,
) -> _Summary:
    """The run's hours split into ``writers`` contiguous shares, each crawled and landed by a
    process of its own at once (a DuckLake takes many writers; their colliding transactions
    are run again by landing). A failed writer fails the step once the others have finished:
    what they landed stays, and re-running the range completes it."""
    shares = [
        hours[i * len(hours) // writers : (i + 1) * len(hours) // writers] for i in range(writers)
    ]
    summary = _Summary()
    started = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, ProcessPoolExecutor(writers, mp_context=spawn) as pool:
        progress = manager.Queue()
        futures = [
            pool.submit(
                _land_share,
                _configuration(warehouse),
                _configuration(crawler),
                relays,
                share,
                progress,
                max(1, (os.cpu_count() or 1) // writers),
            )
            for share in shares
        ]
        while not all(f.done() for f in futures) or not progress.empty():
            with suppress(queue.Empty):
                context.log.info(progress.get(timeout=0.5))
        # The first failure, once every writer has finished (result() raises it).
        for future in futures:
            summary.merge(future.result())
    summary.fetch_wall_seconds = time.perf_counter() - started
    return summary


def _results(
    summary: _Summary, hours: int, partition_keys: list[str], guard_metadata: dict[str, int]
):
    """The run's materializations and checks, or a failure for the hours no relay answered.

    An hour that reached no relay is not materialized: it shows as failed in the UI, and
    automation builds nothing downstream of it. Its per-relay fetch statistics are already
    landed, so the outage stays on record. In a range, the hours that did reach a relay are
    materialized one by one before the run fails, so downstream automation picks them up.
    """
    per_relay = summary.per_relay
    failed = sum(1 for r in per_relay.values() if r["error_class"])
    invalid_events = sum(summary.invalid.values())
    common: dict[str, Any] = {
        "hours": hours,
        # Wall time of fetching and landing (hours overlap, so the two sums below exceed it).
        "fetch_wall_seconds": round(summary.fetch_wall_seconds, 3),
        "crawl_seconds": round(summary.crawl_seconds, 3),
        "land_seconds": round(summary.land_seconds, 3),
        "land_transactions": summary.totals["land_transactions"],
        # Transactions run again after losing to another writer of a lake (0 on the file).
        "conflicts_retried": summary.totals["conflicts_retried"],
        "relays_reached": len(per_relay) - failed,
        "relays_failed": failed,
        "possibly_truncated_relays": sum(1 for r in per_relay.values() if r["truncated"]),
        "invalid_events": invalid_events,
        **{f"invalid/{reason}": n for reason, n in sorted(summary.invalid.items())},
    }
    row_counts = {
        EVENTS: summary.totals["events"],
        SIGHTINGS: summary.totals["sightings"],
        FETCH_STATS: len(per_relay) * hours,
    }
    served = sum(r["events"] for r in per_relay.values())
    share = served / (served + invalid_events) if served else 1.0
    unreached = summary.hours_without_relay
    reached_check = dg.AssetCheckResult(
        check_name="relays_reached",
        asset_key=EVENTS,
        passed=not unreached,
        metadata={
            "relays_reached": common["relays_reached"],
            "hours_without_any_relay": len(unreached),
            "first_such_hours": ", ".join(unreached[:5]),
        },
    )
    if unreached:
        explanation = explain_unreached(summary.unreached_errors, unreached)
        for key in partition_keys:
            if key in unreached:
                continue
            for asset_key in (EVENTS, SIGHTINGS, FETCH_STATS):
                yield dg.AssetMaterialization(asset_key, partition=key, metadata=common)
        yield reached_check
        raise dg.Failure(
            description=explanation,
            metadata={
                "hours_without_any_relay": len(unreached),
                "first_such_hours": ", ".join(unreached[:5]),
                **{f"relay_errors/{name}": n for name, n in summary.unreached_errors.items()},
                **common,
            },
            # Fetching the same hour again at once meets the same network: no step retry.
            allow_retries=False,
        )
    worst = dg.MetadataValue.md(_worst_relays_markdown(list(per_relay.values())))
    for asset_key, rows in row_counts.items():
        extra: dict[str, Any] = (
            {"worst_relays": worst, **guard_metadata} if asset_key == EVENTS else {}
        )
        yield dg.MaterializeResult(
            asset_key=asset_key, metadata={"dagster/row_count": rows, **common, **extra}
        )
    yield dg.AssetCheckResult(
        check_name="valid_event_share",
        asset_key=EVENTS,
        passed=share >= MIN_VALID_SHARE,
        metadata={"valid_share": share, "valid": served, "invalid": invalid_events},
    )
    yield reached_check


def _run_async(iterator):
    """Drive an async iterator from synchronous code, one item at a time, on one event loop."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(iterator))
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(iterator.aclose())
        loop.close()
