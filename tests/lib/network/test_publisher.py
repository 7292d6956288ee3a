"""Protects publishing NIP-66 reports against real nostr-relay instances: every event lands
with its tags and a valid signature, a re-run publishes nothing new, a relay that refuses or
is down is recorded, and our own NIP-66 reader reads the reports back as the observations
they came from."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from relays import start_relay
from websockets.asyncio.client import connect

from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.publisher import publish
from nostr_assets.lib.protocol.event import EventVerifier, decode_event
from nostr_assets.lib.protocol.keys import parse_secret_key
from nostr_assets.lib.protocol.nip66 import report_from_event
from nostr_assets.lib.protocol.nip66_publish import (
    Observation,
    monitor_announcement,
    relay_report,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

KEY = parse_secret_key("7f" * 32)
CONFIG = ClientConfig(allow_private=True, connect_timeout=3, idle_timeout=5, total_timeout=20)
NOW = int(time.time()) - 60


def observations() -> list[Observation]:
    document = json.dumps({"name": "one", "supported_nips": [1, 11, 45], "software": "x"})
    return [
        Observation(
            relay_url="wss://relay.one.example",
            observed_at=NOW,
            rtt_open_ms=120.0,
            rtt_read_ms=45.0,
            nip11_raw=document,
            supported_nips=(1, 11, 45),
            payment_required=False,
            reads_without_auth=True,
            requires_auth_for_read=False,
            answers_count=True,
            answers_negentropy=False,
            latitude=50.11,
            longitude=8.68,
            country_code="DE",
            asn=24940,
        ),
        Observation(relay_url="wss://relay.two.example", observed_at=NOW, rtt_open_ms=300.0),
    ]


async def fetch_reports(url: str, author: str) -> list:
    async with connect(url) as ws:
        await ws.send(json.dumps(["REQ", "r", {"authors": [author], "kinds": [30166, 10166]}]))
        events = []
        while (frame := json.loads(await ws.recv()))[0] != "EOSE":
            events.append(decode_event(json.dumps(frame[2])))
    return events


def test_publish_read_back_and_publish_again(tmp_path):
    accepting = start_relay(tmp_path / "accepting")
    refusing = start_relay(tmp_path / "refusing", refuse_authors=[KEY.pubkey])
    down = "ws://127.0.0.1:1"
    try:
        events = [relay_report(KEY, seen) for seen in observations()]
        events.append(monitor_announcement(KEY, NOW, 3600, {"open": 10000, "read": 15000}))
        first = asyncio.run(publish([accepting.url, down], events, CONFIG))
        statuses = {(r.relay_url, r.event_id): r.status for r in first}
        assert len(first) == 6
        assert {statuses[(accepting.url, e.id)] for e in events} == {"accepted"}
        assert {statuses[(down, e.id)] for e in events} == {"unreachable"}
        # nostr-relay pauses 2 s before refusing (longer each time): one event is enough.
        (refused,) = asyncio.run(publish([refusing.url], events[-1:], CONFIG))
        assert (refused.event_id, refused.status) == (events[-1].id, "refused")
        assert "not allowed" in refused.message

        stored = asyncio.run(fetch_reports(accepting.url, KEY.pubkey))
        assert sorted(e.id for e in stored) == sorted(e.id for e in events)
        verifier = EventVerifier()
        assert all(verifier.reject_reason(e) is None for e in stored)
        one = next(e for e in stored if ["d", "wss://relay.one.example"] in e.tags)
        assert ["N", "45"] in one.tags and ["R", "!auth"] in one.tags
        assert ["l", "DE", "ISO-3166-1"] in one.tags and ["g", "u0yjj"] in one.tags

        # Our own reader gives back what was observed (round trips to the millisecond).
        report = report_from_event(one)
        seen = observations()[0]
        assert (report.relay_url, report.observed_at) == (seen.relay_url, seen.observed_at)
        assert (report.rtt_open_ms, report.rtt_read_ms) == (120.0, 45.0)
        assert report.nip11_raw == seen.nip11_raw
        assert report.info.supported_nips == [1, 11, 45]
        assert report.info.software == "x" and report.info.payment_required is False

        # A second run sends the same events: duplicates, nothing new stored.
        again = asyncio.run(publish([accepting.url], events, CONFIG))
        assert {r.status for r in again} == {"duplicate"}
        assert len(asyncio.run(fetch_reports(accepting.url, KEY.pubkey))) == len(events)
    finally:
        accepting.stop()
        refusing.stop()
