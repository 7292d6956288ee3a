"""What strangers' events can add to the relay catalog: at most NOSTR_CATALOG_URLS_PER_EVENT
URLs from one event, at most NOSTR_CATALOG_NEW_URLS_PER_RUN new relays per run (the best
attested first, the rest in a later run), whatever a signed event names.

The URLs are IP literals from a documentation range, so the address guard needs no DNS.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest
from dagster_env import graph_resources, python_assets
from relays import BASE_HOUR, SECRET_KEYS

from nostr_assets.defs.resources import RelaySourcesResource
from nostr_assets.lib.protocol.discovery import OVER_EVENT_LIMIT, discover_relays
from nostr_assets.lib.protocol.event import sign_event
from nostr_assets.lib.warehouse.event_landing import land_window
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.lib.warehouse.tables.event_relay_sightings import sighting_rows
from nostr_assets.lib.warehouse.tables.nostr_events import event_rows

HOUR = datetime.fromtimestamp(BASE_HOUR, UTC)


def url(i: int) -> str:
    return f"wss://198.51.{i // 250}.{i % 250 + 1}"


def hints(key: int, urls: list[str], at: int = 0):
    """A note by author ``key`` whose p tags hint at each of ``urls``."""
    tags = [["p", "ab" * 32, u] for u in urls]
    return sign_event(SECRET_KEYS[key], BASE_HOUR + at, 1, tags, "hi", bytes(32))


def relay_list(key: int, urls: list[str]):
    tags = [["r", u] for u in urls]
    return sign_event(SECRET_KEYS[key], BASE_HOUR + 1, 10002, tags, "", bytes(32))


def test_one_event_adds_at_most_its_share_of_urls():
    flood = hints(0, [url(i) for i in range(20_000)])
    started = time.perf_counter()
    found = discover_relays([flood], max_per_event=100)
    elapsed = time.perf_counter() - started
    assert sorted(found.urls) == sorted(url(i) for i in range(100))
    assert found.rejected[OVER_EVENT_LIMIT] == 19_900
    assert elapsed < 1.0  # 20,000 hints are counted, not normalised: a few milliseconds
    assert len(discover_relays([flood]).urls) == 20_000  # no bound: every one


def test_new_urls_are_taken_best_attested_first():
    events = [
        hints(0, [url(1), url(2), url(3)]),
        hints(1, [url(2)], at=2),
        hints(2, [url(2), url(3)], at=3),
        relay_list(3, [url(4)]),
    ]
    found = discover_relays(events)
    # nip65 first; then hints by distinct authors (url 2: 3, url 3: 2, url 1: 1).
    taken, deferred = found.best_new(known={url(9)}, limit=3)
    assert list(taken) == [url(4), url(2), url(3)] and deferred == 1
    taken, deferred = found.best_new(known={url(4), url(2)}, limit=3)
    assert list(taken) == [url(3), url(1)] and deferred == 0


@pytest.fixture
def flooded(tmp_path):
    """A warehouse holding one event that hints at 250 relays and a relay list naming 3."""
    database = tmp_path / "nostr.duckdb"
    events = [hints(0, [url(i) for i in range(250)]), relay_list(1, [url(300), url(301)])]
    with duckdb.connect(str(database)) as conn:
        ensure_raw_tables(conn)
        rows = event_rows(events, {e.id: BASE_HOUR + 10.0 for e in events})
        land_window(conn, HOUR, HOUR + timedelta(hours=1), rows, sighting_rows([], {}))
    return database


def catalog(database) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as conn:
        return [u for (u,) in conn.execute("select relay_url from raw.relay_catalog").fetchall()]


def test_the_catalog_takes_a_bounded_number_of_new_relays_per_run(flooded):
    resources = graph_resources(flooded, ["wss://listed.example.com"])
    resources["relay_sources"] = RelaySourcesResource(
        extra_relays="wss://listed.example.com", urls_per_event=40, new_urls_per_run=30
    )

    def run() -> dict:
        result = dg.materialize(python_assets(), selection="raw/relay_catalog", resources=resources)
        (materialization,) = result.asset_materializations_for_node("raw__relay_catalog")
        return {k: v.value for k, v in materialization.metadata.items()}

    first = run()
    stored = catalog(flooded)
    # The listed relay always; the relay list's 2 before any hint; 28 of the 40 hints taken.
    assert "wss://listed.example.com" in stored
    assert {url(300), url(301)} <= set(stored)
    assert len(stored) == 1 + 30
    assert first["new_relays"] == 30 and first["deferred_urls"] == 12
    assert first["refused_urls/over_event_limit"] == 210
    second = run()
    assert len(catalog(flooded)) == 1 + 42  # the 12 left waiting, and never more than 40
    assert second["new_relays"] == 12 and second["deferred_urls"] == 0
