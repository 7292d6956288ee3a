"""Many relays, one time window: bounded concurrency, cross-relay dedupe, sightings.

Each relay is fetched by ``window_fetch.fetch_window`` into one shared ``IngestState``, so an
event served by ten relays is verified once and recorded as ten sightings (its replication).
A relay's failure is its own row in ``relay_stats``; it never fails the crawl.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from nostr_assets.lib.failures import ErrorClass
from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.window_fetch import fetch_window
from nostr_assets.lib.network.window_reader import WindowStats
from nostr_assets.lib.protocol.event import Event
from nostr_assets.lib.protocol.ingest import IngestState
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, normalize_relay_url


@dataclass(frozen=True, slots=True)
class Sighting:
    event_id: str
    relay_url: str
    first_seen_at: float  # unix seconds when this relay first served the event


@dataclass
class CrawlResult:
    events: list[Event]  # unique verified events, sorted by (created_at, id)
    sightings: list[Sighting]  # one per (event, relay), sorted by (event_id, relay_url)
    relay_stats: list[WindowStats]  # one per accepted relay URL, in input order
    rejected_urls: dict[str, str]  # URL as given -> reason it was not crawled


def prepare_urls(urls: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Normalise relay URLs, dropping duplicates (first spelling wins) and refusing bad ones."""
    accepted: dict[str, None] = {}  # ordered, and a membership test in O(1)
    rejected: dict[str, str] = {}
    for url in urls:
        try:
            accepted.setdefault(normalize_relay_url(url))
        except InvalidRelayUrl as error:
            rejected[str(url)] = error.reason
    return list(accepted), rejected


async def crawl(
    urls: Sequence[str],
    since: int,
    until: int,
    kinds: Iterable[int] | None = None,
    *,
    config: ClientConfig,
    concurrency: int = 256,
    state: IngestState | None = None,
    on_progress: Callable[[WindowStats], None] | None = None,
    gate: asyncio.Semaphore | None = None,
) -> CrawlResult:
    """Fetch the window [since, until] (both inclusive) from every relay, at most
    ``concurrency`` connections at once (or as many as a ``gate`` shared by several crawls,
    such as the hours of a backfill, allows)."""
    accepted, rejected = prepare_urls(urls)
    state = state if state is not None else IngestState(max_held_bytes=config.max_held_bytes)
    kinds = sorted(set(kinds)) if kinds else None
    gate = gate if gate is not None else asyncio.Semaphore(max(1, concurrency))

    async def one(url: str) -> WindowStats:
        async with gate:
            stats = await fetch_window(url, since, until, kinds, config=config, sink=state.accept)
        if on_progress is not None:
            on_progress(stats)
        return stats

    relay_stats = await asyncio.gather(*(one(url) for url in accepted))
    return window_result(state, since, until, kinds, list(relay_stats), rejected)


def window_result(
    state: IngestState,
    since: int,
    until: int,
    kinds: Iterable[int] | None,
    relay_stats: list[WindowStats],
    rejected: dict[str, str],
) -> CrawlResult:
    """What a crawl of [since, until] gathered in ``state``: the window's events in order
    and who held each, whatever else the state holds."""
    kinds = set(kinds) if kinds else None
    window = [
        e
        for e in state.events.values()
        if since <= e.created_at <= until and (kinds is None or e.kind in kinds)
    ]
    window.sort(key=lambda e: (e.created_at, e.id))
    ids = {e.id for e in window}
    sightings = sorted(
        (
            Sighting(event_id, relay, seen)
            for (event_id, relay), seen in state.sightings.items()
            if event_id in ids
        ),
        key=lambda s: (s.event_id, s.relay_url),
    )
    return CrawlResult(window, sightings, relay_stats, rejected)


# One window from every relay, sharing a limit on open connections: what fetch_hours runs per
# hour. ``window_crawler`` gives the real one; tests of asset logic pass a fake.
CrawlWindow = Callable[[Sequence[str], int, int, asyncio.Semaphore], Awaitable[CrawlResult]]


# A relay that fails like this is down, refuses us, or will not answer: asking it again for
# every hour of a backfill would pay its timeout once per hour (a tarpit: 10 s an hour).
UNREACHABLE_ERRORS = frozenset(
    {
        ErrorClass.DNS_FAILED,
        ErrorClass.REFUSED_ADDRESS,
        ErrorClass.TIMEOUT_CONNECT,
        ErrorClass.HANDSHAKE_FAILED,
        ErrorClass.REDIRECT_REFUSED,
        ErrorClass.TLS_FAILED,
        ErrorClass.CONNECTION_REFUSED,
        ErrorClass.OS_ERROR,
        ErrorClass.TIMEOUT_IDLE,
    }
)


def window_crawler(kinds: Iterable[int] | None, config: ClientConfig) -> CrawlWindow:
    """``crawl`` with these kinds and settings, as a ``CrawlWindow`` for one run.

    A relay whose window failed before it served anything (``UNREACHABLE_ERRORS``) is not
    contacted again by the later windows of the same run: they get its failure as their own
    stats row, saying so, and the hour stays recorded as unreached for that relay.
    """
    failed: dict[str, WindowStats] = {}

    async def crawl_window(
        urls: Sequence[str], since: int, until: int, gate: asyncio.Semaphore
    ) -> CrawlResult:
        accepted, rejected = prepare_urls(urls)
        skipped = [url for url in accepted if url in failed]
        tried = [url for url in accepted if url not in failed]
        # ``tried`` is normalised already: crawl's own pass over it finds nothing to refuse.
        result = await crawl(tried, since, until, kinds, config=config, gate=gate)
        result.rejected_urls.update(rejected)
        for stats in result.relay_stats:
            if stats.error_class in UNREACHABLE_ERRORS and not stats.events:
                failed.setdefault(stats.relay_url, stats)
        for url in skipped:
            first = failed[url]
            result.relay_stats.append(
                WindowStats(
                    relay_url=url,
                    since=since,
                    until=until,
                    error_class=first.error_class,
                    error_message=(
                        f"not contacted again in this run: {first.error_class} for the window "
                        f"from {first.since} ({first.error_message or 'no detail'})"
                    )[:500],
                )
            )
        return result

    return crawl_window
