"""publish/nip66_relay_reports: our hourly observations, published as a NIP-66 monitor.

Strictly opt-in: nothing is signed or sent unless NOSTR_MONITOR_SECRET_KEY and
NOSTR_MONITOR_PUBLISH_RELAYS are both set. The key stays inside the monitor resource: it is
never logged, never in metadata, never in the warehouse, never in an error message.
"""

import asyncio
from collections import Counter
from datetime import UTC

import dagster as dg
from dagster_duckdb import DuckDBResource

from nostr_assets.defs.conditions import PUBLISH_HOUR
from nostr_assets.defs.partitions import hourly_partitions, single_run
from nostr_assets.defs.resources import NostrCrawlerResource
from nostr_assets.defs.resources.monitor import NostrMonitorResource
from nostr_assets.defs.writers import RAW_WRITERS_POOL
from nostr_assets.lib.network.hourly_fetch import hours_between
from nostr_assets.lib.network.probe import CAPABILITY_TIMEOUT
from nostr_assets.lib.network.publisher import publish
from nostr_assets.lib.protocol.nip66_publish import (
    Observation,
    monitor_announcement,
    monitor_profile,
    monitor_relay_list,
    relay_report,
)
from nostr_assets.lib.warehouse.landing import replace_window
from nostr_assets.lib.warehouse.tables.nip66_publish_results import publish_result_rows

# Our own probe rows of relays found reachable: NIP-66 reports describe relays a monitor found
# online, and rows rebuilt from other monitors' reports are theirs to publish, not ours.
OBSERVATIONS_SQL = """
    select
        s.relay_url,
        epoch(s.observed_at)::bigint as observed_at,
        s.rtt_open_ms,
        s.rtt_read_ms,
        s.nip11_raw,
        s.supported_nips,
        s.auth_required,
        s.payment_required,
        s.reads_without_auth,
        s.requires_auth_for_read,
        s.answers_count,
        s.answers_negentropy,
        g.latitude,
        g.longitude,
        g.country_code,
        g.asn
    from raw.relay_snapshots as s
    left join raw.relay_geolocations as g
        on g.snapshot_hour = s.snapshot_hour and g.relay_url = s.relay_url
    where s.snapshot_hour = $1 and s.observation_source = 'probe' and s.is_reachable
    order by s.relay_url
"""

PROFILE = {
    "name": "nostr-analytics monitor",
    "about": "Hourly NIP-66 relay reports (reachability, round trips, NIP-11, what relays "
    "answer) from a nostr-analytics pipeline.",
}


def read_observations(conn, hour) -> list[Observation]:
    rows = conn.execute(OBSERVATIONS_SQL, [hour]).fetchall()
    columns = [d[0] for d in conn.description]
    observations = []
    for row in rows:
        fields = dict(zip(columns, row, strict=True))
        nips = fields["supported_nips"]
        fields["supported_nips"] = tuple(nips) if nips is not None else None
        observations.append(Observation(**fields))
    return observations


REPORTS = dg.AssetKey(["publish", "nip66_relay_reports"])
RESULTS = dg.AssetKey(["raw", "nip66_publish_results"])
OBSERVATIONS = [["raw", "relay_snapshots"], ["raw", "relay_geolocations"]]


@single_run(
    dg.multi_asset,
    specs=[
        dg.AssetSpec(
            REPORTS,
            description="One kind-30166 event per relay our probe found reachable in the hour, "
            "signed by NOSTR_MONITOR_SECRET_KEY and sent to NOSTR_MONITOR_PUBLISH_RELAYS.",
            deps=OBSERVATIONS,
            group_name="publish",
            kinds={"python", "nostr"},
            # Published once the hour's snapshots are in (geolocation, when there is one, adds
            # the g and l tags); a rerun sends the same signed events, taken as duplicates.
            automation_condition=PUBLISH_HOUR,
        ),
        dg.AssetSpec(
            RESULTS,
            description="One row per snapshot hour, relay published to and event: what the "
            "relay answered (accepted, duplicate, refused, no_answer, unreachable).",
            deps=OBSERVATIONS,
            group_name="publish",
            kinds={"python", "duckdb"},
            # Requested with the reports in the same tick, so one run does both.
            automation_condition=PUBLISH_HOUR,
        ),
    ],
    partitions_def=hourly_partitions,
    pool=RAW_WRITERS_POOL,
    # Either key may be asked for alone (a backfill of one of them, say): the step publishes
    # and records either way, and reports what was asked. Non-subsettable, a backfill over both
    # was refused now and then for targeting "different subsets" of one multi-asset.
    can_subset=True,
)
def nip66_relay_reports(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    monitor: NostrMonitorResource,
    crawler: NostrCrawlerResource,
):
    """One kind-30166 event per relay our probe found reachable in each hour of the run, plus
    the monitor's kind-10166 announcement, kind-0 profile and kind-10002 relay list, sent to
    NOSTR_MONITOR_PUBLISH_RELAYS; raw.nip66_publish_results gets one row per relay and event
    with what the relay answered. Without a key and relays, nothing is sent, and the
    materialization says why."""
    window = context.partition_time_window
    start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
    if not monitor.enabled():
        why = monitor.why_disabled()
        context.log.info(f"nothing published: {why}")
        # The table is left as it is: the answers to an earlier publish stay.
        yield from _selected(
            context,
            dg.MaterializeResult(asset_key=RESULTS, metadata={"unchanged": why}),
            dg.MaterializeResult(
                asset_key=REPORTS, metadata={"published": 0, "why_not_published": why}
            ),
        )
        return

    key, relays = monitor.key(), monitor.relays()
    config = crawler.client_config()
    with duckdb.get_connection() as conn:
        observed = {hour: read_observations(conn, hour) for hour in hours_between(start, end)}
    reports: dict = {}
    subjects: dict[str, str] = {}
    for hour, observations in observed.items():
        reports[hour] = [relay_report(key, seen) for seen in observations]
        pairs = zip(reports[hour], observations, strict=True)
        subjects.update({event.id: seen.relay_url for event, seen in pairs})
    # The monitor's own events once a run, dated the window's close: the same on every rerun.
    closing = int(end.timestamp())
    # One timeout per check the probe performs (the `c` tags), as the probe applies them.
    capability = round(min(CAPABILITY_TIMEOUT, config.idle_timeout) * 1000)
    timeouts = {
        "open": round(config.connect_timeout * 1000),
        "read": round(config.idle_timeout * 1000),
        "auth": round(config.idle_timeout * 1000),
        "nip11": round(config.connect_timeout * 1000),
        "dns": round(config.connect_timeout * 1000),
        "count": capability,
        "negentropy": capability,
    }
    own = [
        monitor_announcement(key, closing, 3600, timeouts),
        monitor_profile(key, closing, PROFILE),
        monitor_relay_list(key, closing, relays),
    ]
    rows: list[dict] = []
    statuses: Counter[str] = Counter()
    last_hour = max(observed)
    for hour, hour_reports in reports.items():
        events = hour_reports + (own if hour == last_hour else [])
        if not events:
            continue  # an hour our probe did not observe (a backfill of the past)
        results = asyncio.run(publish(relays, events, config))
        rows += publish_result_rows(hour, results, subjects)
        statuses.update(r.status for r in results)
    with duckdb.get_connection() as conn:
        replace_window(conn, "nip66_publish_results", "snapshot_hour", start, end, rows)
    published = sum(len(r) for r in reports.values())
    context.log.info(
        f"{published} relay report(s) over {len(observed)} hour(s) sent to {len(relays)} "
        f"relay(s) as {key.npub}: "
        + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    )
    yield from _selected(
        context,
        dg.MaterializeResult(asset_key=RESULTS, metadata={"dagster/row_count": len(rows)}),
        dg.MaterializeResult(
            asset_key=REPORTS,
            metadata={
                "published": published,
                "hours": len(observed),
                "monitor_npub": key.npub,
                "publish_relays": len(relays),
                **{f"status/{status}": n for status, n in sorted(statuses.items())},
            },
        ),
    )


def _selected(context: dg.AssetExecutionContext, *results: dg.MaterializeResult):
    """The results of the keys this run asked for."""
    return (r for r in results if r.asset_key in context.selected_asset_keys)
