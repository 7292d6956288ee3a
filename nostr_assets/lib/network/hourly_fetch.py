"""Fetch a range of hours from many relays and land each hour as soon as it is complete.

A week's backfill is 168 hourly windows, but a relay asked for each of them separately pays a
connection, a handshake and a round trip per hour: for the network's thousand relays that hold
a few events an hour, that is nearly all the cost of a week. Hours are therefore fetched in
*spans*: one window over several consecutive hours per relay (a relay that holds little answers
the whole span in one REQ; one that holds much is paged through it as through an hour), then
split back into hours as they land. The first hour is fetched alone, and its events size the
spans: as many hours as hold about ``max_span_events`` events at that rate, so a dense network
keeps one-hour spans and bounded memory, and a quiet one is fetched a day at a time.

Several spans are in flight at once (sharing one bound on open connections), and finished
spans are landed in a worker thread while the next ones are still being fetched. Hours are
landed in order, consecutive finished hours together, so an interrupted backfill
keeps every hour it landed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from nostr_assets.lib.network.crawler import CrawlResult, CrawlWindow
from nostr_assets.lib.network.window_reader import WindowStats

HOUR = timedelta(hours=1)
HOUR_SECONDS = 3600


@dataclass
class CrawledHour:
    hour: datetime
    fetched_at: datetime
    result: CrawlResult
    crawl_seconds: float  # this hour's share of its span's crawl time
    span_hours: int = 1  # hours fetched in the same windows as this one


@dataclass
class LandedBatch:
    """Consecutive hours landed together (one call of ``land``)."""

    hours: list[CrawledHour]
    events: int  # rows of these hours in the warehouse after landing
    sightings: int
    land_seconds: float


# consecutive crawled hours -> (events, sightings) now stored for them
LandHours = Callable[[list[CrawledHour]], tuple[int, int]]

# Landing costs about 90 ms per call whatever its size (bench_backfill: 168 one-hour landings
# took 16 s), so finished hours are landed together, up to this many hours or events: the rows
# of a landing are built at once, as Python columns and Arrow tables (11 hours of 1,700 events
# with their contact lists took the process from 250 MB to 1 GB; hour by hour, to 500 MB).
MAX_HOURS_PER_BATCH = 24
MAX_EVENTS_PER_BATCH = 5_000
# A span's events are held until it lands: about 2 kB each with their sightings, so two spans of
# 20,000 events in flight stay well inside the crawl's memory target.
MAX_SPAN_EVENTS = 20_000
# A relay whose span fails is retried only in a later run: a day is the most a failure costs.
MAX_SPAN_HOURS = 24


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    hours = []
    hour = start
    while hour < end:
        hours.append(hour)
        hour += HOUR
    return hours


def span_length(events_per_hour: int | None, max_span_events: int, max_span_hours: int) -> int:
    """Hours per span: one until the network's rate is known, then as many as hold about
    ``max_span_events`` at the densest rate seen."""
    if events_per_hour is None:
        return 1
    return max(1, min(max_span_hours, max_span_events // max(1, events_per_hour)))


async def fetch_hours(
    relays: Sequence[str],
    hours: Sequence[datetime],
    *,
    crawl_window: CrawlWindow,
    concurrency: int,
    hours_in_flight: int,
    land: LandHours,
    max_span_events: int = MAX_SPAN_EVENTS,
    max_span_hours: int = MAX_SPAN_HOURS,
) -> AsyncIterator[LandedBatch]:
    """Yield consecutive hours of ``hours``, in order, once crawled from every relay and landed.

    At most ``hours_in_flight`` one-hour spans (or two longer ones) are fetched or waiting to
    land at once; a span's slot is given back only once it is landed, so finished crawls
    waiting for their turn cannot pile up in memory.
    """
    connections = asyncio.Semaphore(max(1, concurrency))
    pending = deque(hours)
    in_flight: deque[asyncio.Task[list[CrawledHour]]] = deque()
    densest: int | None = None  # the most events seen in one hour so far

    async def crawl_span(span: list[datetime]) -> list[CrawledHour]:
        fetched_at = datetime.now(UTC)
        started = time.perf_counter()
        since = int(span[0].timestamp())
        # until is inclusive in NIP-01: the span's last second is its last hour's + 3599.
        until = int(span[-1].timestamp()) + HOUR_SECONDS - 1
        result = await crawl_window(relays, since, until, connections)
        seconds = (time.perf_counter() - started) / len(span)
        return [
            CrawledHour(hour, fetched_at, part, seconds, len(span))
            for hour, part in zip(span, split_by_hour(result, span), strict=True)
        ]

    def start_spans() -> None:
        while pending:
            if densest is None and in_flight:
                return  # the first hour, alone, tells how long spans can be
            length = span_length(densest, max_span_events, max_span_hours)
            limit = max(1, hours_in_flight) if length == 1 else max(2, hours_in_flight // length)
            if len(in_flight) >= limit:
                return
            span = [pending.popleft()]
            while pending and len(span) < length and pending[0] == span[-1] + HOUR:
                span.append(pending.popleft())
            in_flight.append(asyncio.create_task(crawl_span(span)))

    try:
        start_spans()
        while in_flight:
            batch = await in_flight.popleft()
            while in_flight and in_flight[0].done():
                batch.extend(in_flight.popleft().result())
            for crawled in batch:
                densest = max(densest or 0, len(crawled.result.events))
            for landing in landing_batches(batch):
                started = time.perf_counter()
                events, sightings = await asyncio.to_thread(land, landing)
                yield LandedBatch(landing, events, sightings, time.perf_counter() - started)
            start_spans()
    finally:
        for task in in_flight:
            task.cancel()


def landing_batches(hours: list[CrawledHour]) -> list[list[CrawledHour]]:
    """Consecutive crawled hours cut into landings of at most ``MAX_HOURS_PER_BATCH``
    hours and, beyond their first hour, ``MAX_EVENTS_PER_BATCH`` events."""
    batches: list[list[CrawledHour]] = []
    events = 0
    for crawled in hours:
        n = len(crawled.result.events)
        if (
            not batches
            or len(batches[-1]) >= MAX_HOURS_PER_BATCH
            or events + n > MAX_EVENTS_PER_BATCH
        ):
            batches.append([])
            events = 0
        batches[-1].append(crawled)
        events += n
    return batches


def split_by_hour(result: CrawlResult, hours: Sequence[datetime]) -> list[CrawlResult]:
    """A span's crawl as one ``CrawlResult`` per hour: its events, their sightings, and each
    relay's window as a stats row per hour.

    A relay's hour row counts the events of that hour it held; the window's outcome (error,
    EOSE, CLOSED, address, connect time) is every hour's, since which hours a failed window
    covered is not known; ``possibly_truncated`` is the flagged seconds' hours only, or every
    hour when the flag concerns the whole window. The window's other counters (pages, bytes,
    duplicates, invalid events, bad frames) are on its first hour, so sums over hours hold.
    """
    if len(hours) == 1:
        return [result]
    starts = [int(h.timestamp()) for h in hours]
    first = starts[0]

    def index(created_at: int) -> int:
        return min(len(hours) - 1, max(0, (created_at - first) // HOUR_SECONDS))

    events: list[list] = [[] for _ in hours]
    hour_of: dict[str, int] = {}
    for event in result.events:  # sorted by (created_at, id): each hour's part stays sorted
        i = index(event.created_at)
        events[i].append(event)
        hour_of[event.id] = i
    sightings: list[list] = [[] for _ in hours]
    held: list[Counter[str]] = [Counter() for _ in hours]
    for sighting in result.sightings:
        i = hour_of[sighting.event_id]
        sightings[i].append(sighting)
        held[i][sighting.relay_url] += 1
    parts = []
    for i, start in enumerate(starts):
        stats = [_hour_stats(s, i, start, held[i][s.relay_url]) for s in result.relay_stats]
        parts.append(CrawlResult(events[i], sightings[i], stats, dict(result.rejected_urls)))
    return parts


def _hour_stats(window: WindowStats, i: int, start: int, events: int) -> WindowStats:
    seconds = {s for s in window.truncated_seconds if start <= s < start + HOUR_SECONDS}
    flagged = window.possibly_truncated and (not window.truncated_seconds or bool(seconds))
    row = replace(
        window,
        since=start,
        until=start + HOUR_SECONDS - 1,
        events=events,
        possibly_truncated=flagged,
        truncation_note=window.truncation_note if flagged else None,
        truncated_seconds=seconds,
    )
    if i:
        row.duplicates = row.out_of_filter = row.stray_events = 0
        row.invalid_ids = row.invalid_signatures = 0
        row.invalid, row.bad_frames = Counter(), Counter()
        row.pages = row.split_seconds = row.bytes_received = 0
        row.notices = []
        row.time_to_first_event_ms = None
    return row
