"""raw/relay_snapshots: what each catalogued relay looked like during an hour that just closed."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import msgspec
from dagster_duckdb import DuckDBResource

from nostr_assets.defs.freshness import HOURLY_FRESHNESS
from nostr_assets.defs.partitions import OBSERVATIONS_RUN, hourly_partitions, single_run
from nostr_assets.defs.relays.relay_list import (
    contactable_relays,
    guarded_relays_skipped,
    report_guarded,
)
from nostr_assets.defs.resources import NostrCrawlerResource, RelaySourcesResource
from nostr_assets.defs.writers import RAW_WRITERS_POOL
from nostr_assets.lib.network.hourly_fetch import hours_between
from nostr_assets.lib.network.probe import RelayProbe
from nostr_assets.lib.protocol.event import Event
from nostr_assets.lib.protocol.nip66 import MonitorReport, latest_reports
from nostr_assets.lib.warehouse.landing import replace_window
from nostr_assets.lib.warehouse.tables.relay_snapshots import snapshot_row

# A probe observes the present. The hourly schedule asks for the hour that just closed a few
# minutes after it closed; a queued run may start later, so two hours of slack are allowed.
# An older hour is never probed (that would pass today's answer off as the past's).
MAX_SNAPSHOT_LAG = timedelta(hours=2)


def oldest_observable_hour(now: datetime) -> datetime:
    """The oldest snapshot hour a probe taken ``now`` may still describe."""
    return now.replace(minute=0, second=0, microsecond=0) - MAX_SNAPSHOT_LAG


def monitor_reports(conn, hour: datetime, relays: set[str]) -> dict[str, MonitorReport]:
    """The latest NIP-66 report per catalogued relay among the hour's stored kind-30166 events."""
    rows = conn.execute(
        """
        select event_id, pubkey, created_at, kind, tags, content, sig from raw.nostr_events
        where kind = 30166 and created_hour = $1
        """,
        [hour],
    ).fetchall()
    events = [
        Event(eid, pubkey, created_at, kind, msgspec.json.decode(tags), content, sig)
        for eid, pubkey, created_at, kind, tags, content, sig in rows
    ]
    return {url: r for url, r in latest_reports(events).items() if url in relays}


def probed_relays(conn, hours: list[datetime]) -> dict[datetime, set[str]]:
    """Per hour, the relays our own probe observed when that hour was recent."""
    found: dict[datetime, set[str]] = {hour: set() for hour in hours}
    if hours:
        rows = conn.execute(
            """
            select snapshot_hour, relay_url from raw.relay_snapshots
            where observation_source = 'probe' and snapshot_hour in (select unnest($1))
            """,
            [hours],
        ).fetchall()
        for hour, url in rows:
            found[hour.astimezone(UTC)].add(url)
    return found


def _keep_probes_before(probe_hour: datetime | None) -> str:
    """Rows of the window a rerun keeps: probe rows of hours it does not probe again."""
    if probe_hour is None:
        return "observation_source = 'probe'"
    return f"observation_source = 'probe' and snapshot_hour <> '{probe_hour.isoformat()}'"


async def probe_all(urls: list[str], crawler: NostrCrawlerResource) -> list[RelayProbe]:
    limit = asyncio.Semaphore(crawler.concurrency)

    async def one(url: str) -> RelayProbe:
        async with limit:
            return await crawler.probe(url)

    return list(await asyncio.gather(*(one(u) for u in urls)))


@single_run(
    dg.asset,
    key=["raw", "relay_snapshots"],
    # Events: past hours are rebuilt from the NIP-66 monitor events stored among them.
    deps=[["raw", "relay_catalog"], ["raw", "nostr_events"]],
    group_name="relays",
    kinds={"python", "duckdb"},
    tags=OBSERVATIONS_RUN,
    partitions_def=hourly_partitions,
    freshness_policy=HOURLY_FRESHNESS,
    pool=RAW_WRITERS_POOL,
)
def relay_snapshots(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    crawler: NostrCrawlerResource,
    relay_sources: RelaySourcesResource,
) -> dg.MaterializeResult:
    """One row per catalogued relay and hour: DNS answer, the IP actually connected to,
    reachable or not with the error class, round-trip times (open, read, NIP-11), and the
    NIP-11 document raw and parsed. Only recent hours can be probed; an older hour is rebuilt
    from the NIP-66 monitor events (kind 30166) stored for it, one row per relay a monitor
    reported, marked as such, never invented."""
    window = context.partition_time_window
    hours = hours_between(window.start, window.end)
    # One probe describes one hour: the latest that can still be observed, if the window holds
    # it. Every other hour of the window is a past hour, rebuilt from monitors' reports.
    observable = [h for h in hours if h >= oldest_observable_hour(datetime.now(UTC))]
    probe_hour = observable[-1] if observable else None
    past = [h for h in hours if h != probe_hour]
    with duckdb.get_connection() as conn:
        listed = relay_sources.listed()
        relays = contactable_relays(conn, crawler.allow_private_addresses, listed)
        guarded = guarded_relays_skipped(conn, crawler.allow_private_addresses, listed)
        # Past hours: any catalogued relay, retired since or not, may have a report then.
        catalog = set(contactable_relays(conn, allow_private=True, listed=None))
        probed = probed_relays(conn, past)
        reports = {hour: monitor_reports(conn, hour, catalog - probed[hour]) for hour in past}
    probes = []
    # Only the probe contacts relays: without one, the guard skipped nothing.
    guard_metadata = report_guarded(context, guarded if probe_hour is not None else [])
    if probe_hour is not None:
        probes = asyncio.run(probe_all(relays, crawler))

    rows = [snapshot_row(probe_hour, p) for p in probes] if probe_hour is not None else []
    for hour in past:
        rows.extend(snapshot_row(hour, r) for _, r in sorted(reports[hour].items()))
    if past:
        reported = sum(len(r) for r in reports.values())
        kept = sum(len(r) for r in probed.values())
        context.log.warning(
            f"{len(past)} past hour(s) cannot be probed now: {kept} probe row(s) taken when "
            f"they were recent are kept, {reported} relay(s) rebuilt from stored NIP-66 monitor "
            "events (kind 30166). Relays with neither have no row (unknown, not unreachable)."
        )
    with duckdb.get_connection() as conn:
        replace_window(
            conn,
            "relay_snapshots",
            "snapshot_hour",
            window.start,
            window.end,
            rows,
            # Our own observations of past hours cannot be taken again: never delete them.
            keep=_keep_probes_before(probe_hour),
        )

    reachable = [p for p in probes if p.reachable]
    errors = Counter(p.error_class for p in probes if not p.reachable)
    rtts = sorted(p.rtt_open_ms for p in reachable if p.rtt_open_ms is not None)
    context.log.info(f"{len(reachable)}/{len(probes)} relays reachable")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "probed_hours": int(probe_hour is not None),
            "nip66_hours": len(past),
            "nip66_rows": len(rows) - len(probes),
            "relays_reached": len(reachable),
            "relays_failed": len(probes) - len(reachable),
            "nip11_documents": sum(1 for p in probes if p.nip11 and p.nip11.document),
            "median_rtt_open_ms": rtts[len(rtts) // 2] if rtts else 0.0,
            **{f"errors/{name}": n for name, n in sorted(errors.items())},
            **guard_metadata,
        }
    )
