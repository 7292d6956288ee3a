"""Fetch a range of hours from many relays and land each hour as soon as it is complete.

A week's backfill is 168 hourly windows. Crawling them one after the other leaves the relays
idle while DuckDB writes, and DuckDB idle while relays answer; here several hours are in flight
at once (sharing one bound on open connections) and each finished hour is landed in a worker
thread while the next ones are still being fetched. Hours are landed in order, each in its own
transaction, so an interrupted backfill keeps every hour it finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nostr_assets.lib.crawler import CrawlResult, crawl
from nostr_assets.lib.relay_client import ClientConfig

HOUR = timedelta(hours=1)


@dataclass
class LandedHour:
    hour: datetime
    fetched_at: datetime
    result: CrawlResult
    events: int  # rows of the hour in the warehouse after landing
    sightings: int
    crawl_seconds: float
    land_seconds: float


# (hour start, fetched_at, crawl result) -> (events, sightings) now stored for that hour
LandHour = Callable[[datetime, datetime, CrawlResult], tuple[int, int]]


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
    kinds: Sequence[int] | None,
    *,
    config: ClientConfig,
    concurrency: int,
    hours_in_flight: int,
    land: LandHour,
) -> AsyncIterator[LandedHour]:
    """Yield each hour of ``hours`` once it is crawled from every relay and landed."""
    connections = asyncio.Semaphore(max(1, concurrency))
    in_flight = asyncio.Semaphore(max(1, hours_in_flight))

    async def crawl_hour(hour: datetime) -> tuple[datetime, CrawlResult, float]:
        # The slot is given back only once the hour is landed (below), so finished crawls
        # waiting for their turn to land cannot pile up in memory.
        await in_flight.acquire()
        fetched_at = datetime.now(UTC)
        started = time.perf_counter()
        since = int(hour.timestamp())
        # until is inclusive in NIP-01: an hour's last second is since + 3599.
        result = await crawl(relays, since, since + 3599, kinds, config=config, gate=connections)
        return fetched_at, result, time.perf_counter() - started

    tasks = [asyncio.create_task(crawl_hour(hour)) for hour in hours]
    try:
        for hour, task in zip(hours, tasks, strict=True):
            fetched_at, result, crawl_seconds = await task
            started = time.perf_counter()
            try:
                events, sightings = await asyncio.to_thread(land, hour, fetched_at, result)
            finally:
                in_flight.release()
            yield LandedHour(
                hour,
                fetched_at,
                result,
                events,
                sightings,
                crawl_seconds,
                time.perf_counter() - started,
            )
    finally:
        for task in tasks:
            task.cancel()
