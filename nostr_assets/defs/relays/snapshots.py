"""raw/relay_snapshots: what each catalogued relay looked like during an hour that just closed."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from nostr_assets.defs.freshness import HOURLY_FRESHNESS
from nostr_assets.defs.partitions import hourly_partitions
from nostr_assets.defs.relays.relay_list import contactable_relays
from nostr_assets.defs.resources import NostrCrawlerResource
from nostr_assets.lib.probe import RelayProbe, probe_relay
from nostr_assets.lib.relay_client import ClientConfig
from nostr_assets.lib.warehouse import replace_window

# A snapshot observes the present. The hourly schedule asks for the hour that just closed a few
# minutes after it closed; a queued run may start later, so two hours of slack are allowed.
# Anything older would be a made-up past, and is refused.
MAX_SNAPSHOT_LAG = timedelta(hours=2)


def refused_hours(start: datetime, end: datetime, now: datetime) -> list[datetime]:
    """Hours of ``[start, end)`` too old to be observed at ``now``."""
    earliest = now.replace(minute=0, second=0, microsecond=0) - MAX_SNAPSHOT_LAG
    hours = []
    hour = start
    while hour < end:
        if hour < earliest:
            hours.append(hour)
        hour += timedelta(hours=1)
    return hours


_SCHEMA = pa.schema(
    [
        ("snapshot_hour", pa.timestamp("us", tz="UTC")),
        ("relay_url", pa.string()),
        ("observed_at", pa.timestamp("us", tz="UTC")),
        ("dns_addresses", pa.list_(pa.string())),
        ("connected_ip", pa.string()),
        ("is_reachable", pa.bool_()),
        ("error_class", pa.string()),
        ("error_message", pa.string()),
        ("rtt_open_ms", pa.float64()),
        ("rtt_read_ms", pa.float64()),
        ("rtt_nip11_ms", pa.float64()),
        ("nip11_status_code", pa.int32()),
        ("nip11_raw", pa.string()),
        ("nip11_error", pa.string()),
        ("relay_name", pa.string()),
        ("relay_description", pa.string()),
        ("relay_pubkey", pa.string()),
        ("relay_contact", pa.string()),
        ("software", pa.string()),
        ("software_version", pa.string()),
        ("supported_nips", pa.list_(pa.int32())),
        ("max_limit", pa.int64()),
        ("max_message_length", pa.int64()),
        ("max_subscriptions", pa.int64()),
        ("payment_required", pa.bool_()),
        ("auth_required", pa.bool_()),
        ("restricted_writes", pa.bool_()),
    ]
)


def snapshot_row(hour: datetime, probe: RelayProbe) -> dict:
    nip11 = probe.nip11
    info = nip11.info if nip11 is not None else None
    return {
        "snapshot_hour": hour,
        "relay_url": probe.relay_url,
        "observed_at": datetime.fromtimestamp(probe.observed_at, UTC),
        "dns_addresses": list(probe.dns_addresses or []),
        "connected_ip": probe.connected_ip,
        "is_reachable": probe.reachable,
        "error_class": probe.error_class,
        "error_message": (probe.error_message or None) and probe.error_message[:500],
        "rtt_open_ms": probe.rtt_open_ms,
        "rtt_read_ms": probe.rtt_read_ms,
        "rtt_nip11_ms": nip11.rtt_ms if nip11 else None,
        "nip11_status_code": nip11.status_code if nip11 else None,
        "nip11_raw": nip11.raw if nip11 else None,
        "nip11_error": nip11.error if nip11 else None,
        "relay_name": info.name if info else None,
        "relay_description": info.description if info else None,
        "relay_pubkey": info.pubkey if info else None,
        "relay_contact": info.contact if info else None,
        "software": info.software if info else None,
        "software_version": info.version if info else None,
        "supported_nips": info.supported_nips if info else None,
        "max_limit": info.max_limit if info else None,
        "max_message_length": info.max_message_length if info else None,
        "max_subscriptions": info.max_subscriptions if info else None,
        "payment_required": info.payment_required if info else None,
        "auth_required": info.auth_required if info else None,
        "restricted_writes": info.restricted_writes if info else None,
    }


async def probe_all(urls: list[str], config: ClientConfig, concurrency: int) -> list[RelayProbe]:
    limit = asyncio.Semaphore(concurrency)

    async def one(url: str) -> RelayProbe:
        async with limit:
            return await probe_relay(url, config=config)

    return list(await asyncio.gather(*(one(u) for u in urls)))


@dg.asset(
    key=["raw", "relay_snapshots"],
    deps=[["raw", "relay_catalog"]],
    group_name="relays",
    kinds={"python", "duckdb"},
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    freshness_policy=HOURLY_FRESHNESS,
    pool="duckdb",
)
def relay_snapshots(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    crawler: NostrCrawlerResource,
) -> dg.MaterializeResult:
    """One row per catalogued relay and hour: DNS answer, the IP actually connected to,
    reachable or not with the error class, round-trip times (open, read, NIP-11), and the
    NIP-11 document raw and parsed. Only the hour just closed can be observed; past hours are
    refused, never invented."""
    window = context.partition_time_window
    now = datetime.now(UTC)
    too_old = refused_hours(window.start, window.end, now)
    if too_old:
        raise dg.Failure(
            description=(
                f"A relay snapshot observes the present, so it cannot be taken for "
                f"{len(too_old)} past hour(s) starting {too_old[0]:%Y-%m-%d %H:00} UTC "
                f"(the oldest hour that can be observed now is "
                f"{(now - MAX_SNAPSHOT_LAG):%Y-%m-%d %H:00} UTC). Materialise only recent "
                "hours of raw/relay_snapshots; backfill raw/nostr_events on its own."
            ),
            allow_retries=False,
        )
    with duckdb.get_connection() as conn:
        relays = contactable_relays(conn, crawler.allow_private_addresses)
    probes = asyncio.run(probe_all(relays, crawler.client_config(), crawler.concurrency))

    rows = []
    hour = window.start
    while hour < window.end:
        rows.extend(snapshot_row(hour, p) for p in probes)
        hour += timedelta(hours=1)
    table = pa.Table.from_pylist(rows, schema=_SCHEMA)
    with duckdb.get_connection() as conn:
        replace_window(conn, "relay_snapshots", "snapshot_hour", window.start, window.end, table)

    reachable = [p for p in probes if p.reachable]
    errors = Counter(p.error_class for p in probes if not p.reachable)
    rtts = sorted(p.rtt_open_ms for p in reachable if p.rtt_open_ms is not None)
    context.log.info(f"{len(reachable)}/{len(probes)} relays reachable")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "relays_reached": len(reachable),
            "relays_failed": len(probes) - len(reachable),
            "nip11_documents": sum(1 for p in probes if p.nip11 and p.nip11.document),
            "median_rtt_open_ms": rtts[len(rtts) // 2] if rtts else 0.0,
            **{f"errors/{name}": n for name, n in sorted(errors.items())},
        }
    )
