"""Protects ``probe_relay``, the hourly relay snapshot: against the real nostr-relay it reports
DNS, the connected address, both round-trips and the NIP-11 document; a refused or dead relay
is a recorded error, never an exception.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from fault_relay import FaultRelay

from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.probe import CAPABILITY_TIMEOUT, probe_relay
from nostr_assets.lib.protocol.event import encode_event

pytestmark = pytest.mark.timeout(30)

CONFIG = ClientConfig(allow_private=True, connect_timeout=3, idle_timeout=3, total_timeout=10)


def test_probe_of_a_live_relay(relay_all):
    probe = asyncio.run(probe_relay(relay_all.url, config=CONFIG))
    assert probe.reachable and probe.error_class is None
    assert probe.dns_addresses == ["127.0.0.1"] and probe.connected_ip == "127.0.0.1"
    assert probe.rtt_open_ms > 0 and probe.rtt_read_ms > 0
    assert probe.nip11.status_code == 200 and probe.nip11.info.name == "test relay"
    assert probe.observed_at > 1_700_000_000


def test_probe_refuses_loopback_unless_allowed(relay_all):
    config = ClientConfig(allow_private=False, connect_timeout=3, total_timeout=10)
    probe = asyncio.run(probe_relay(relay_all.url, config=config))
    assert not probe.reachable and probe.error_class == "refused_address"
    assert probe.nip11 is None and probe.connected_ip is None


def test_probe_of_a_closed_port():
    probe = asyncio.run(probe_relay("ws://127.0.0.1:1", config=CONFIG))
    assert not probe.reachable and probe.error_class == "connection_refused"
    assert probe.nip11 is not None and probe.nip11.error
    assert probe.to_dict()["relay_url"] == "ws://127.0.0.1:1"


def test_the_read_round_trip_is_timed_to_the_probes_own_answer(test_events):
    """Answers for other subscriptions, sent before the REQ is even read, are not the answer:
    a relay could otherwise fake a fast read round trip."""

    async def scenario():
        event = test_events[0]
        early = [
            f'["EVENT","other",{encode_event(event).decode()}]',
            '["EOSE","other"]',
            '["CLOSED","other","error: not yours"]',
        ]
        async with FaultRelay([event], round_trip=0.5, on_connect=early) as relay:
            return await probe_relay(relay.url, config=CONFIG)

    probe = asyncio.run(scenario())
    assert probe.reachable and probe.error_class is None
    assert probe.rtt_read_ms >= 450


@pytest.mark.parametrize(
    ("negentropy", "count", "expected"),
    [("msg", True, (True, True)), ("err", False, (False, False)), (None, True, (True, False))],
)
def test_observed_capabilities(test_events, negentropy, count, expected):
    """NIP-45 COUNT and NIP-77 negentropy as the relay answers them: NEG-MSG is support;
    NEG-ERR, like silence, is not. A silent relay costs the probe one short wait, not two."""

    async def scenario():
        relay = FaultRelay(test_events[:3], negentropy=negentropy, count_supported=count)
        async with relay:
            started = time.perf_counter()
            probe = await probe_relay(relay.url, config=CONFIG)
            return probe, time.perf_counter() - started

    probe, seconds = asyncio.run(scenario())
    assert probe.error_class is None
    assert (probe.reads_without_auth, probe.requires_auth_for_read) == (True, False)
    assert (probe.answers_count, probe.answers_negentropy) == expected
    if all(expected):
        assert seconds < 2  # both answered: no timeout waited
    else:
        assert seconds < CAPABILITY_TIMEOUT + 2


@pytest.mark.parametrize(
    ("closed", "requires_auth"),
    [("auth-required: members only", True), ("restricted: paying members only", None)],
)
def test_a_relay_refusing_to_read(test_events, closed, requires_auth):
    """A relay that refuses the plain REQ refuses COUNT and NEG-OPEN too, which shows nothing
    about NIP-45 or NIP-77: those stay not tested. Only an auth-required refusal says AUTH is
    required; another refusal says nothing about it."""

    async def scenario():
        relay = FaultRelay(test_events[:3], closed_message=closed, negentropy="err")
        async with relay:
            return await probe_relay(relay.url, config=CONFIG)

    probe = asyncio.run(scenario())
    assert probe.reachable and probe.rtt_read_ms is not None
    assert (probe.reads_without_auth, probe.requires_auth_for_read) == (False, requires_auth)
    assert (probe.answers_count, probe.answers_negentropy) == (None, None)


def test_capabilities_are_not_tested_on_a_relay_never_reached():
    probe = asyncio.run(probe_relay("ws://127.0.0.1:1", config=CONFIG))
    assert not probe.reachable
    observed = (probe.reads_without_auth, probe.answers_count, probe.answers_negentropy)
    assert observed == (None, None, None)
