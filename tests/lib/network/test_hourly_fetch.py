"""Fetching a range of hours: every hour crawled once, landed in order, batches consecutive.

Protects the backfill pipeline against the two ways overlapping work goes wrong: an hour landed
twice or out of order, and finished crawls piling up instead of landing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from relays import BASE_HOUR, HOUR, in_window

from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.crawler import window_crawler
from nostr_assets.lib.network.hourly_fetch import fetch_hours, hours_between


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
    assert [c.hour for b in landed for c in b.hours] == hours
