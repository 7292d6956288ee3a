"""raw/relay_catalog: every relay URL we know of, where it came from, and whether it is guarded."""

import asyncio
from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import duckdb
import msgspec
import polars as pl
from dagster_duckdb import DuckDBResource

from nostr_assets.defs.freshness import HOURLY_FRESHNESS
from nostr_assets.defs.partitions import single_run
from nostr_assets.defs.relays.relay_list import retired_relays
from nostr_assets.defs.resources import NostrCrawlerResource, RelaySourcesResource
from nostr_assets.defs.writers import RAW_WRITERS_POOL
from nostr_assets.lib.failures import ErrorClass, GuardReason
from nostr_assets.lib.network.address_guard import AddressRefused, resolve_guarded
from nostr_assets.lib.protocol.discovery import Discovery, discover_relays
from nostr_assets.lib.protocol.event import Event
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl
from nostr_assets.lib.warehouse.tables.relay_catalog import upsert_catalog

# Discovery reads only events that can carry relay URLs: kind-3 content maps, kind-10002
# `r` tags, and tags with a ws(s):// relay hint. The LIKE prefilter keeps the scan in DuckDB.
DISCOVERY_SQL = """
    select event_id, pubkey, created_at, kind, tags, content, sig
    from raw.nostr_events
    where kind in (3, 10002) or tags like '%"ws%'
"""

# DNS answers that say nothing about the address: not a reason to mark a relay guarded.
UNRESOLVED_REASONS = (ErrorClass.DNS_FAILED,)


def read_discovered_relays(
    conn: duckdb.DuckDBPyConnection, max_per_event: int | None = None
) -> Discovery:
    """Relay URLs mentioned by stored events (url -> source, and who named them), and
    refusals by reason; at most ``max_per_event`` URLs from any one event."""
    rows = conn.execute(DISCOVERY_SQL).fetchall()
    events = [
        Event(eid, pubkey, created_at, kind, _decode_tags(tags), content, sig)
        for eid, pubkey, created_at, kind, tags, content, sig in rows
    ]
    return discover_relays(events, max_per_event=max_per_event)


def _decode_tags(text: str) -> list[list[str]]:
    return msgspec.json.decode(text, type=list[list[str]])


async def _guard_all(urls: list[str], concurrency: int) -> dict[str, str | None]:
    """url -> reason it must not be contacted (private, loopback ...), or None."""
    limit = asyncio.Semaphore(concurrency)

    async def one(url: str) -> str | None:
        async with limit:
            try:
                await resolve_guarded(url, allow_private=False, timeout=3.0)
            except AddressRefused as refused:
                return None if refused.reason in UNRESOLVED_REASONS else refused.reason
            except InvalidRelayUrl:
                return GuardReason.INVALID_URL
            return None

    reasons = await asyncio.gather(*(one(u) for u in urls))
    return dict(zip(urls, reasons, strict=True))


@single_run(
    dg.asset,
    key=["raw", "relay_catalog"],
    group_name="relays",
    kinds={"python", "duckdb"},
    freshness_policy=HOURLY_FRESHNESS,
    pool=RAW_WRITERS_POOL,
    # Lets `dagster asset materialize --select '*' --partition-range ...` include it in one run.
    automation_condition=dg.AutomationCondition.on_cron("0 * * * *"),
)
def relay_catalog(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    relay_sources: RelaySourcesResource,
    crawler: NostrCrawlerResource,
) -> dg.MaterializeResult:
    """One row per relay URL ever known: bootstrap list, NOSTR_RELAYS, and URLs found in stored
    events (kind 10002, kind-3 maps, tag hints), normalised, with source and first/last seen.

    Relays whose addresses are private, loopback, link-local and the like are kept but marked
    guarded; they are never contacted unless NOSTR_ALLOW_PRIVATE_ADDRESSES allows it. Listed
    relays taken out of the list keep their row but are retired: no longer fetched. The events
    it reads are not declared as an upstream dependency: events depend on the catalog, and a
    cycle is not allowed in the graph.
    """
    now = datetime.now(UTC)
    # A bad URL in the list fails the run naming it (SettingsError): never dropped silently.
    found = relay_sources.bootstrap()
    listed = sorted(found)
    with duckdb.get_connection() as conn:
        discovery = read_discovered_relays(conn, relay_sources.urls_per_event)
        known = {
            url for (url,) in conn.execute("select relay_url from raw.relay_catalog").fetchall()
        }
    # URLs strangers name grow the hourly crawl: known ones are refreshed, new ones come in at
    # most new_urls_per_run per run, the best attested first; the rest wait (deferred).
    new, deferred = discovery.best_new(known | found.keys(), relay_sources.new_urls_per_run)
    for url, source in discovery.urls.items():
        if url in known:
            found.setdefault(url, source)
    for url, source in new.items():
        found.setdefault(url, source)

    guard = asyncio.run(_guard_all(sorted(found), crawler.concurrency))
    incoming = pl.DataFrame(
        {
            "relay_url": sorted(found),
            "source": [found[u] for u in sorted(found)],
            "is_guarded": [guard[u] is not None for u in sorted(found)],
            "guard_reason": [guard[u] for u in sorted(found)],
        },
        schema={
            "relay_url": pl.String,
            "source": pl.String,
            "is_guarded": pl.Boolean,
            "guard_reason": pl.String,
        },
    )
    with duckdb.get_connection() as conn:
        conn.register("incoming", incoming.to_arrow())
        # Upsert: first_seen_at and the original source survive; last_seen_at moves to now.
        upsert_catalog(conn, now)
        conn.unregister("incoming")
        total, guarded = conn.execute(
            "select count(*), count(*) filter (where is_guarded) from raw.relay_catalog"
        ).fetchone()
        retired = retired_relays(conn, listed)

    by_source = Counter(found.values())
    refused = Counter(discovery.rejected)
    context.log.info(f"{total} relays in the catalog, {len(found)} listed or discovered now")
    if deferred:
        context.log.warning(
            f"{deferred} newly discovered relay URL(s) wait for a later run: at most "
            f"{relay_sources.new_urls_per_run} new ones per run (NOSTR_CATALOG_NEW_URLS_PER_RUN)"
        )
    if retired:
        context.log.info(
            f"{len(retired)} relay(s) no longer listed are retired (kept, not fetched): "
            f"{', '.join(retired[:10])}{' ...' if len(retired) > 10 else ''}"
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "relays_seen_now": len(found),
            "guarded_relays": guarded,
            # Left the relays file or NOSTR_RELAYS: rows kept, no longer fetched.
            "retired_relays": len(retired),
            "new_relays": len(new),
            # Discovered but beyond NOSTR_CATALOG_NEW_URLS_PER_RUN: taken by a later run.
            "deferred_urls": deferred,
            **{f"source/{name}": n for name, n in sorted(by_source.items())},
            **{f"refused_urls/{name}": n for name, n in sorted(refused.items())},
        }
    )
