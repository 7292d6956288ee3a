"""Fetch a range of hours from many relays and land each hour as soon as it is complete.

A week's backfill is 168 hourly windows. Crawling them one after the other leaves the relays
idle while DuckDB writes, and DuckDB idle while relays answer; here several hours are in flight
at once (sharing one bound on open connections) and finished hours are landed in a worker
thread while the next ones are still being fetched. Hours are landed in order, consecutive
finished hours in one transaction, so an interrupted backfill keeps every hour it landed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nostr_assets.lib.network.crawler import CrawlResult, CrawlWindow

HOUR = timedelta(hours=1)


@dataclass
class CrawledHour:
    hour: datetime
    fetched_at: datetime
    result: CrawlResult
    crawl_seconds: float


@dataclass
class LandedBatch:
    """Consecutive hours landed in one transaction."""

    hours: list[CrawledHour]
    events: int  # rows of these hours in the warehouse after landing
    sightings: int
    land_seconds: float


# consecutive crawled hours -> (events, sightings) now stored for them
LandHours = Callable[[list[CrawledHour]], tuple[int, int]]

# Landing costs about 90 ms per transaction whatever its size (bench_backfill: 168 one-hour
# transactions took 16 s); hours that finished crawling while the previous batch landed are
# landed together, up to this many.
MAX_HOURS_PER_BATCH = 24


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    hours = []
    hour = start
    while hour < end:
        hours.append(hour)
        hour += HOUR
    return hours


async def fetch_hours(
    relays: Sequence[str],
    hours: Sequence[datetime],
    *,
    crawl_window: CrawlWindow,
    concurrency: int,
    hours_in_flight: int,
    land: LandHours,
) -> AsyncIterator[LandedBatch]:
    """Yield consecutive hours of ``hours``, in order, once crawled from every relay and landed."""
    connections = asyncio.Semaphore(max(1, concurrency))
    in_flight = asyncio.Semaphore(max(1, hours_in_flight))

    async def crawl_hour(hour: datetime) -> CrawledHour:
        # The slot is given back only once the hour is landed (below), so finished crawls
        # waiting for their turn to land cannot pile up in memory.
        await in_flight.acquire()
        fetched_at = datetime.now(UTC)
        started = time.perf_counter()
        since = int(hour.timestamp())
        # until is inclusive in NIP-01: an hour's last second is since + 3599.
        result = await crawl_window(relays, since, since + 3599, connections)
        return CrawledHour(hour, fetched_at, result, time.perf_counter() - started)

    tasks = [asyncio.create_task(crawl_hour(hour)) for hour in hours]
    try:
        next_task = 0
        while next_task < len(tasks):
            batch = [await tasks[next_task]]
            next_task += 1
            while (
                next_task < len(tasks)
                and tasks[next_task].done()
                and len(batch) < MAX_HOURS_PER_BATCH
            ):
                batch.append(tasks[next_task].result())
                next_task += 1
            started = time.perf_counter()
            try:
                events, sightings = await asyncio.to_thread(land, batch)
            finally:
                for _ in batch:
                    in_flight.release()
            yield LandedBatch(batch, events, sightings, time.perf_counter() - started)
    finally:
        for task in tasks:
            task.cancel()
