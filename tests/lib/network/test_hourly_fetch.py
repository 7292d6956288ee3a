"""Fetching a range of hours: every hour crawled once, landed in order, batches consecutive.

Protects the backfill pipeline against the two ways overlapping work goes wrong: an hour landed
twice or out of order, and finished crawls piling up instead of landing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from relays import BASE_HOUR, HOUR, SECRET_KEYS, in_window

from nostr_assets.lib.network import hourly_fetch
from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.crawler import CrawlResult, Sighting, window_crawler
from nostr_assets.lib.network.hourly_fetch import (
    CrawledHour,
    fetch_hours,
    hours_between,
    landing_batches,
    split_by_hour,
)
from nostr_assets.lib.network.window_reader import WindowStats
from nostr_assets.lib.protocol.event import sign_event


def test_hours_crawled_once_and_landed_in_order(relay_all):
    start = datetime.fromtimestamp(BASE_HOUR, UTC)
    hours = hours_between(start, datetime.fromtimestamp(BASE_HOUR + 3 * HOUR, UTC))
    batches = []

    def land(batch):
        batches.append([(c.hour, {e.id for e in c.result.events}) for c in batch])
        return sum(len(c.result.events) for c in batch), 0

    async def run():
        return [
            landed
            async for landed in fetch_hours(
                [relay_all.url],
                hours,
                crawl_window=window_crawler(None, ClientConfig(allow_private=True, idle_timeout=5)),
                concurrency=4,
                hours_in_flight=3,
                land=land,
            )
        ]

    landed = asyncio.run(run())
    flat = [item for batch in batches for item in batch]
    assert [hour for hour, _ in flat] == hours
    for hour, ids in flat:
        since = int(hour.timestamp())
        assert ids == {e.id for e in in_window(relay_all.events, since, since + HOUR - 1)}
    assert sum(b.events for b in landed) == sum(len(ids) for _, ids in flat)
    crawled = [c for b in landed for c in b.hours]
    assert [c.hour for c in crawled] == hours
    # The first hour alone; its few events let the other two be fetched in one window.
    assert [c.span_hours for c in crawled] == [1, 2, 2]
    for c, (_, ids) in zip(crawled, flat, strict=True):
        (stats,) = c.result.relay_stats
        assert stats.events == len(ids) and stats.error_class is None
        assert (stats.since, stats.until) == (
            int(c.hour.timestamp()),
            int(c.hour.timestamp()) + 3599,
        )
        assert {s.event_id for s in c.result.sightings} == ids
    # The span's pages are counted once, on its first hour.
    assert (
        crawled[1].result.relay_stats[0].pages > 0 and crawled[2].result.relay_stats[0].pages == 0
    )


def _span_result(events, relay="wss://a.example"):
    sightings = [Sighting(e.id, relay, 1.0) for e in sorted(events, key=lambda e: e.id)]
    stats = WindowStats(
        relay_url=relay, since=BASE_HOUR, until=BASE_HOUR + 3 * HOUR - 1, events=len(events)
    )
    stats.pages, stats.bytes_received, stats.eose_received = 4, 1000, True
    stats.invalid["bad_signature"] += 2
    return CrawlResult(sorted(events, key=lambda e: (e.created_at, e.id)), sightings, [stats], {})


def test_a_span_splits_into_hours_with_its_counters_counted_once():
    events = [
        sign_event(SECRET_KEYS[0], BASE_HOUR + offset, 1, [], f"n{offset}")
        for offset in (0, 10, HOUR + 5, 2 * HOUR + HOUR - 1)
    ]
    result = _span_result(events)
    result.relay_stats[0].truncated("second split by guess", BASE_HOUR + HOUR + 5)
    hours = [datetime.fromtimestamp(BASE_HOUR + i * HOUR, UTC) for i in range(3)]
    parts = split_by_hour(result, hours)
    assert [len(p.events) for p in parts] == [2, 1, 1]
    assert [len(p.sightings) for p in parts] == [2, 1, 1]
    rows = [p.relay_stats[0] for p in parts]
    assert [r.events for r in rows] == [2, 1, 1]
    assert [(r.since, r.until) for r in rows] == [
        (BASE_HOUR + i * HOUR, BASE_HOUR + (i + 1) * HOUR - 1) for i in range(3)
    ]
    # Window counters once, on the first hour; the outcome on every hour.
    assert [r.pages for r in rows] == [4, 0, 0]
    assert sum(sum(r.invalid.values()) for r in rows) == 2
    assert all(r.eose_received for r in rows)
    # The flag concerns one second: only its hour is flagged.
    assert [r.possibly_truncated for r in rows] == [False, True, False]
    # A flag with no second (a byte budget cut) may concern any hour of the window.
    result.relay_stats[0].truncated("max_window_bytes")
    assert all(p.relay_stats[0].possibly_truncated for p in split_by_hour(result, hours))


def test_landing_transactions_are_bounded_in_hours_and_events(monkeypatch):
    monkeypatch.setattr(hourly_fetch, "MAX_EVENTS_PER_BATCH", 10)
    monkeypatch.setattr(hourly_fetch, "MAX_HOURS_PER_BATCH", 3)

    def crawled(n):
        result = CrawlResult([object()] * n, [], [], {})
        return CrawledHour(datetime.fromtimestamp(BASE_HOUR, UTC), datetime.now(UTC), result, 0.0)

    sizes = [4, 4, 4, 30, 1, 1, 1, 1]
    batches = landing_batches([crawled(n) for n in sizes])
    assert [[len(c.result.events) for c in b] for b in batches] == [
        [4, 4],
        [4],
        [30],
        [1, 1, 1],
        [1],
    ]
