"""A crawler with no network, for the fast tests of asset logic (tests/defs/test_asset_logic.py).

A fake, on purpose: it stands in for relays so that what an asset does with a crawl (which
hours it asks for, what it lands, what it fails, what it tells the UI) is tested in
milliseconds. It decides nothing about validity: every event still goes through
``IngestState``'s id and signature checks, as in a real crawl. Real relays are tested in
tests/lib/network/ and tests/defs/test_raw_assets.py.

``served`` (JSON, so Dagster can rebuild the resource from its config) maps a relay URL to the
events it holds (their NIP-01 JSON) or to the error class it fails with.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

from nostr_assets.defs.resources import NostrCrawlerResource
from nostr_assets.lib.network.crawler import CrawlResult, CrawlWindow, window_result
from nostr_assets.lib.network.probe import RelayProbe
from nostr_assets.lib.network.window_reader import WindowStats
from nostr_assets.lib.protocol.event import Event, decode_event, encode_event
from nostr_assets.lib.protocol.ingest import IngestState


def serving(relays: dict[str, list[Event] | str]) -> FakeCrawler:
    served = {
        url: held if isinstance(held, str) else [encode_event(e).decode() for e in held]
        for url, held in relays.items()
    }
    return FakeCrawler(served=json.dumps(served), allow_private_addresses=True)


class FakeCrawler(NostrCrawlerResource):
    served: str = "{}"

    def _held(self) -> dict[str, list[Event] | str]:
        return {
            url: held if isinstance(held, str) else [decode_event(raw) for raw in held]
            for url, held in json.loads(self.served).items()
        }

    def window_crawler(self) -> CrawlWindow:
        held = self._held()
        kinds = self.kind_list()

        async def crawl_window(
            urls: Sequence[str], since: int, until: int, gate: asyncio.Semaphore
        ) -> CrawlResult:
            state = IngestState()
            stats = []
            for url in urls:
                window = WindowStats(relay_url=url, since=since, until=until)
                served = held.get(url, "connection_refused")
                if isinstance(served, str):
                    window.error_class = served
                else:
                    for event in served:
                        if since <= event.created_at <= until:
                            reason = state.accept(url, event, time.time())
                            if reason is None:
                                window.events += 1
                            else:
                                window.invalid[reason] += 1
                    window.eose_received, window.pages = True, 1
                stats.append(window)
            return window_result(state, since, until, kinds, stats, {})

        return crawl_window

    async def probe(self, url: str) -> RelayProbe:
        served = self._held().get(url, "connection_refused")
        probe = RelayProbe(relay_url=url, observed_at=time.time())
        if isinstance(served, str):
            probe.error_class = served
        else:
            probe.reachable, probe.connected_ip, probe.rtt_open_ms = True, "127.0.0.1", 1.5
        return probe
