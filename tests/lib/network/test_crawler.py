"""Protects the crawl against the real nostr-relay: a window comes back exactly (both bounds
inclusive, each event once) despite the relay's cap of 50, its exclusive ``until`` and a
120-event burst in one second; several relays give the exact union, and the sightings say
which relay held what. Also protects ``IngestState``, the cross-relay deduplicator.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from relays import BASE_HOUR, HOUR, SECRET_KEYS, in_window

from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.crawler import crawl, prepare_urls, window_crawler
from nostr_assets.lib.protocol.event import sign_event
from nostr_assets.lib.protocol.ingest import IngestState

pytestmark = pytest.mark.timeout(60)

CONFIG = ClientConfig(allow_private=True, connect_timeout=5, idle_timeout=10, total_timeout=60)


def crawl_sync(urls, since, until, kinds=None, **options):
    return asyncio.run(crawl(urls, since, until, kinds, **options))


def ids(events) -> list[str]:
    return [e.id for e in events]


def test_one_hour_is_exact_with_boundaries_and_burst(relay_all, test_events):
    since, until = BASE_HOUR, BASE_HOUR + HOUR
    result = crawl_sync([relay_all.url], since, until, config=CONFIG)
    expected = in_window(test_events, since, until)
    assert ids(result.events) == ids(expected)  # sorted by (created_at, id), each once
    seconds = {e.created_at for e in result.events}
    assert {since, until, until - 1, since + 1800} <= seconds  # bounds and the burst second
    assert sum(e.created_at == since + 1800 for e in result.events) == 120
    (stats,) = result.relay_stats
    assert stats.events == len(expected) and stats.error_class is None
    assert stats.until_inclusive is False  # nostr-relay's quirk, learned from its answers
    assert stats.pages > 3 and stats.split_seconds >= 1 and stats.eose_received
    # Every event was found, but nostr-relay answers no NIP-45 COUNT: a split of the burst
    # second by the kinds and authors seen cannot be proven complete, and says so.
    assert stats.possibly_truncated and "NIP-45 COUNT" in stats.truncation_note


def test_kinds_filter_and_a_single_second(relay_all, test_events):
    second = BASE_HOUR + 1800
    result = crawl_sync([relay_all.url], second, second, [7], config=CONFIG)
    expected = [e for e in in_window(test_events, second, second) if e.kind == 7]
    assert expected and ids(result.events) == ids(expected)


def test_overlapping_relays_give_the_union_and_sightings(relay_a, relay_b, test_events):
    since, until = BASE_HOUR, BASE_HOUR + 3 * HOUR
    urls = [relay_a.url, relay_b.url + "/", "http://not-a-relay.example", "ws://127.0.0.1:1"]
    result = crawl_sync(urls, since, until, config=CONFIG, concurrency=2)
    assert ids(result.events) == ids(in_window(test_events, since, until))
    held = {
        relay_a.url: {e.id for e in relay_a.events},
        relay_b.url: {e.id for e in relay_b.events},
    }
    seen: dict[str, set[str]] = {}
    for sighting in result.sightings:
        seen.setdefault(sighting.relay_url, set()).add(sighting.event_id)
    in_range = {e.id for e in result.events}
    assert seen == {url: held_ids & in_range for url, held_ids in held.items()}
    assert result.rejected_urls == {"http://not-a-relay.example": "bad_scheme"}
    # The dead relay is a row of stats, not a failed crawl.
    by_url = {s.relay_url: s for s in result.relay_stats}
    assert by_url["ws://127.0.0.1:1"].error_class == "connection_refused"
    assert by_url[relay_a.url].error_class is None


def test_prepare_urls_normalises_and_drops_duplicates():
    accepted, rejected = prepare_urls(
        ["wss://Relay.Example.com:443/", "wss://relay.example.com", "ftp://x", "ws://a.example"]
    )
    assert accepted == ["wss://relay.example.com", "ws://a.example"]
    assert rejected == {"ftp://x": "bad_scheme"}


def test_ingest_state_dedupes_and_a_forged_first_copy_cannot_suppress_the_real_event():
    real = sign_event(SECRET_KEYS[0], BASE_HOUR, 1, [], "real", bytes(32))
    forged = msgspec.structs.replace(real, content="forged")
    state = IngestState()
    assert state.accept("wss://a", forged, 10.0) == "id_mismatch"
    assert real.id not in state.events
    assert state.accept("wss://b", real, 20.0) is None
    assert state.accept("wss://a", real, 30.0) is None  # a copy: a sighting, no new event
    assert state.accept("wss://a", real, 25.0) is None  # earlier sighting wins
    assert state.accept("wss://c", forged, 40.0) == "id_mismatch"  # same id, other content
    assert state.events == {real.id: real}
    assert state.first_seen == {real.id: 20.0}
    assert state.sightings == {(real.id, "wss://b"): 20.0, (real.id, "wss://a"): 25.0}
    assert state.rejected == {"id_mismatch": 2}


def test_a_relay_that_failed_is_not_contacted_again_in_the_same_run():
    """A backfill asks every hour of every relay; one that refused the upgrade (a 502, as a
    dead relay behind a proxy answers) is asked once per run, and every later hour still gets
    its row, saying why it was not asked."""

    async def scenario():
        connections = 0

        async def bad_gateway(reader, writer):
            nonlocal connections
            connections += 1
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(bad_gateway, "127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        crawl_window = window_crawler(None, CONFIG)
        gate = asyncio.Semaphore(4)
        results = [await crawl_window([url], h, h + 3599, gate) for h in (0, 3600, 7200)]
        server.close()
        return connections, results

    connections, results = asyncio.run(scenario())
    assert connections == 1
    rows = [result.relay_stats for result in results]
    assert [len(r) for r in rows] == [1, 1, 1]
    assert {r[0].error_class for r in rows} == {"handshake_failed"}
    assert "not contacted again in this run" in rows[2][0].error_message
    assert (rows[2][0].since, rows[2][0].until) == (7200, 10799)
