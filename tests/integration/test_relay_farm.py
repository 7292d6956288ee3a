"""The relay farm (benchmarks/relay_farm.py) and one hour crawled from it by the package's crawler.

Protects, on a scaled-down network (250 relays in the network's mix, 3,000 events in the hour,
the dense second's included, and a few just outside it; round trips at a twentieth of the real
ones):

- the farm itself, without the crawler: a REQ to a serving relay returns exactly the manifest's
  events for the filter, newest first with the lowest id first among equals, capped at
  min(limit, relay cap), then EOSE; ``until`` is exclusive where the manifest says so; an auth
  relay answers CLOSED auth-required; a 502 relay refuses the upgrade; an offline relay refuses
  the connection and a tarpit never completes a handshake;
- the crawler against it: every event of the hour that a serving relay holds is landed and
  nothing else, the sightings equal the manifest's (event, relay) pairs on serving relays, and
  every serving relay (rate-limited ones included) is crawled without an error.

The only allowed gap is the dense second (600 kind-7 events by 200 authors in one second on the
three biggest relays): an event of it whose author posts nothing else in the hour may be missing
from relay R only when the crawler flagged R's window ``possibly_truncated`` (the crawler can
only ask for authors it has seen, and filters have no NOT). No other relay may be flagged.

Rate-limited relays allow 1 REQ per connection in any 3 s, so each of them that needs a second
REQ is refused: the crawler waits with growing pauses (2 s, then 4 s) on the same connection and
gets through, as it waits out the network's 60 s windows in bench_network_hour.py. The window is
short here so that the test stays fast. ``FarmSpec(
rate_limited=0.0)`` takes rate-limited relays out of a farm altogether.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.crawler import crawl

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from relay_farm import Farm, FarmSpec, start_farm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SPEC = FarmSpec(
    relays=250,
    events=3000,
    seed=11,
    rtt_scale=0.05,  # normal relays 2.5-20 ms, slow ones 50-150 ms
    rate_limit=1,
    rate_window=3.0,
)
# Short waits, so tarpits and silent relays cost little; long enough for a busy 2-core machine.
CONFIG = ClientConfig(allow_private=True, connect_timeout=1.5, idle_timeout=2.0, total_timeout=40)


@pytest.fixture(scope="module")
def farm(tmp_path_factory) -> Farm:
    farm = start_farm(SPEC, tmp_path_factory.mktemp("relay_farm"))
    yield farm
    farm.stop()


def relay(farm: Farm, behaviour: str) -> dict:
    return next(r for r in farm.manifest.relays if r["behaviour"] == behaviour)


async def ask(url: str, *filters: dict, open_timeout: float = 2) -> tuple[list[dict], list]:
    """One REQ: the events it returned, and the message that ended it (EOSE or CLOSED)."""
    async with connect(url, max_size=2**22, open_timeout=open_timeout) as ws:
        await ws.send(json.dumps(["REQ", "t", *filters]))
        events = []
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 2))
            if message[0] == "EVENT":
                events.append(message[2])
            elif message[0] in ("EOSE", "CLOSED"):
                return events, message


def newest_first(farm: Farm, url: str, keep) -> list[str]:
    """The ids a relay holds that ``keep`` accepts, in NIP-01 order for ``limit``."""
    m = farm.manifest
    held = [e for e in m.by_url[url]["events"] if keep(e)]
    held.sort(key=lambda e: m.ids[e])
    held.sort(key=lambda e: m.created_at[e], reverse=True)
    return [m.ids[e] for e in held]


def test_a_req_returns_the_newest_events_capped_then_eose(farm):
    m = farm.manifest
    big = next(
        r
        for r in sorted(m.relays, key=lambda r: r["rank"])
        if r["behaviour"] == "normal" and len(r["events"]) > r["cap"]
    )
    url, cap = big["url"], big["cap"]
    last = m.until + 1 if big["until_exclusive"] else m.until  # asks for the same seconds
    everything = newest_first(farm, url, m.in_window)
    assert len(everything) > cap  # the cap, not the relay's holdings, ends the answer

    events, end = asyncio.run(ask(url, {"since": m.since, "until": last}))
    assert [e["id"] for e in events] == everything[:cap]
    assert end == ["EOSE", "t"]

    reactions = newest_first(farm, url, lambda e: m.in_window(e) and m.kinds[e] == 7)
    events, end = asyncio.run(
        ask(url, {"since": m.since, "until": last, "kinds": [7], "limit": 40})
    )
    assert [e["id"] for e in events] == reactions[:40]
    assert end == ["EOSE", "t"]

    # Two filters are a union, newest first; the dense second's ties come lowest id first.
    second = m.dense_second
    dense = newest_first(farm, url, lambda e: m.created_at[e] == second)
    notes = newest_first(farm, url, lambda e: m.kinds[e] == 1)
    until = second + 1 if big["until_exclusive"] else second
    events, _ = asyncio.run(
        ask(url, {"since": second, "until": until, "limit": 5}, {"kinds": [1], "limit": 3})
    )
    expected = set(dense[:5]) | set(notes[:3])
    assert len(expected) == 8
    assert [e["id"] for e in events] == newest_first(farm, url, lambda e: m.ids[e] in expected)


def test_until_is_exclusive_only_where_the_manifest_says(farm):
    m = farm.manifest
    for exclusive in (True, False):
        holder = next(
            r for r in m.relays if r["serves"] and r["until_exclusive"] is exclusive and r["events"]
        )
        moment = m.created_at[holder["events"][0]]
        events, end = asyncio.run(ask(holder["url"], {"since": moment, "until": moment}))
        at_moment = newest_first(farm, holder["url"], lambda e, t=moment: m.created_at[e] == t)
        assert at_moment
        assert [e["id"] for e in events] == ([] if exclusive else at_moment)
        assert end == ["EOSE", "t"]


def test_relays_that_serve_nothing(farm):
    events, end = asyncio.run(ask(relay(farm, "auth")["url"], {"limit": 5}))
    assert events == [] and end[0] == "CLOSED" and end[2].startswith("auth-required:")
    events, end = asyncio.run(ask(relay(farm, "restricted")["url"], {"limit": 5}))
    assert events == [] and end[0] == "CLOSED" and end[2].startswith("restricted:")

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(ask(relay(farm, "http502")["url"], {"limit": 5}))
    assert refused.value.response.status_code == 502
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(ask(relay(farm, "offline")["url"], {"limit": 5}))
    with pytest.raises(TimeoutError):
        asyncio.run(ask(relay(farm, "tarpit")["url"], {"limit": 5}, open_timeout=0.5))


def test_the_crawler_lands_the_hour_exactly(tmp_path):
    with start_farm(SPEC, tmp_path) as farm:
        m = farm.manifest
        result = asyncio.run(crawl(m.urls, m.since, m.until, config=CONFIG, concurrency=64))
    served = farm.stop()
    stats = {s.relay_url: s for s in result.relay_stats}
    assert set(stats) == set(m.urls)

    flagged = {url for url, s in stats.items() if s.possibly_truncated}
    dense = set(m.roles["dense"])
    dense_holders = {r["url"] for r in m.relays if dense & set(r["events"])}
    assert flagged <= dense_holders, "a window flagged truncated though every page was provable"

    expected = m.sightings()  # (event id, relay url) on serving relays, inside the hour
    seen = {(s.event_id, s.relay_url) for s in result.sightings}
    assert not seen - expected, "sightings the manifest does not have"
    fresh = m.fresh_dense_ids()
    unexplained = sorted(
        (event_id, url)
        for event_id, url in expected - seen
        if event_id not in fresh or url not in flagged
    )
    assert not unexplained, f"{len(unexplained)} sightings missing, e.g. {unexplained[:3]}"

    landed = [e.id for e in result.events]
    assert len(landed) == len(set(landed))
    assert set(landed) == {event_id for event_id, _ in seen}

    serving = [r["url"] for r in m.relays if r["serves"]]
    failed = {url: stats[url].error_class for url in serving if stats[url].error_class}
    assert not failed, f"serving relays that ended in an error: {failed}"
    assert served["closed_rate_limited"] > 0  # the rate limit was met, and got through
