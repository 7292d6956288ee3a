"""What the events asset reports when relays fail: failed hours, their cause, nothing invented.

Protects: an hour that reached no relay is never materialized and its failure names the likely
cause (no network, private addresses refused, every relay refused) and what to do; in a range,
the hours that did reach a relay are still materialized one by one. Pure functions, no relay.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import pytest

from nostr_assets.defs.events.assets import EVENTS, FETCH_STATS, SIGHTINGS, _results, _Summary
from nostr_assets.defs.events.diagnosis import explain_unreached
from nostr_assets.lib.network.crawler import CrawlResult
from nostr_assets.lib.network.hourly_fetch import CrawledHour, LandedBatch
from nostr_assets.lib.network.window_reader import WindowStats

HOURS = [datetime(2026, 11, 20, h, tzinfo=UTC) for h in (13, 14, 15)]
KEYS = [h.strftime("%Y-%m-%d-%H:%M") for h in HOURS]


@pytest.mark.parametrize(
    ("errors", "cause"),
    [
        (Counter(dns_failed=20, timeout_connect=3), "no network"),
        (Counter(refused_address=2), "NOSTR_ALLOW_PRIVATE_ADDRESSES=true"),
        (Counter(closed_by_relay=2, handshake_failed=1, dns_failed=1), "refused the request"),
        (Counter(timeout_idle=4), "NOSTR_IDLE_TIMEOUT"),
    ],
)
def test_the_likely_cause_is_named(errors, cause):
    text = explain_unreached(errors, ["2026-11-20-13:00"])
    assert cause in text
    assert "2026-11-20-13:00" in text
    assert all(f"{n} {name}" in text for name, n in errors.items())


def crawled(hour: datetime, reached: bool) -> CrawledHour:
    start = int(hour.timestamp())
    stats = WindowStats(relay_url="wss://relay.example.com", since=start, until=start + 3599)
    if reached:
        stats.eose_received = True
        stats.events = 3
    else:
        stats.error_class = "dns_failed"
    result = CrawlResult(events=[], sightings=[], relay_stats=[stats], rejected_urls={})
    return CrawledHour(hour=hour, fetched_at=hour, result=result, crawl_seconds=0.1)


def summarise(reached: list[bool]) -> _Summary:
    summary = _Summary()
    batch = [crawled(h, ok) for h, ok in zip(HOURS, reached, strict=True)]
    summary.add(LandedBatch(hours=batch, events=3, sightings=3, land_seconds=0.0))
    return summary


def test_every_hour_reached_materializes_the_range():
    out = list(_results(summarise([True, True, True]), 3, KEYS, {}))
    results = [o for o in out if isinstance(o, dg.MaterializeResult)]
    assert {r.asset_key for r in results} == {EVENTS, SIGHTINGS, FETCH_STATS}
    checks = {o.check_name: o.passed for o in out if isinstance(o, dg.AssetCheckResult)}
    assert checks == {"valid_event_share": True, "relays_reached": True}


def test_hours_without_relay_fail_and_the_others_are_materialized_one_by_one():
    out = []
    with pytest.raises(dg.Failure) as failure:
        for item in _results(summarise([True, False, True]), 3, KEYS, {}):
            out.append(item)
    assert "no network" in failure.value.description.lower()
    assert KEYS[1] in failure.value.description
    assert not any(isinstance(o, dg.MaterializeResult) for o in out)
    materialized = {
        (o.asset_key, o.partition) for o in out if isinstance(o, dg.AssetMaterialization)
    }
    assert materialized == {
        (k, p) for k in (EVENTS, SIGHTINGS, FETCH_STATS) for p in (KEYS[0], KEYS[2])
    }
    check = next(o for o in out if isinstance(o, dg.AssetCheckResult))
    assert check.check_name == "relays_reached" and not check.passed
