"""The demo's generated network (nostr_assets/demo/network.py, kinds.py).

Protects: the same seed, hour and relay URLs give byte-identical events; every event verifies
(id and BIP-340 signature) and falls in the 48 hours before the current hour; every kind the
demo promises is there, in the shape the pipeline reads (bolt11 amounts as int_zap_receipts.sql
parses them, NIP-66 reports as nip66.py reads them, zap requests signed, deletions by their
author except the one that must be ignored); the relays overlap without any holding everything,
each holds events no other does, and each relay's load order is newest first.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from decimal import Decimal

import msgspec
import pytest

from nostr_assets.demo.kinds import BECH32, bolt11_amount
from nostr_assets.demo.network import DEMO_HOURS, HOUR, RELAY_PROFILES, build_network
from nostr_assets.lib.protocol.event import Event, EventVerifier, decode_event, encode_event
from nostr_assets.lib.protocol.nip66 import report_from_event
from nostr_assets.lib.protocol.relay_url import normalize_relay_url

URLS = [f"ws://127.0.0.1:{port}" for port in (41001, 41002, 41003, 41004)]
NOW = time.time()
END = int(NOW) // HOUR * HOUR  # as the demo takes it: the current hour's start
KINDS = {0, 1, 3, 5, 6, 7, 9735, 30023, 10002, 30166}


@pytest.fixture(scope="module")
def network():
    return build_network(URLS, END)


def sats_claimed(bolt11: str) -> Decimal:
    """The amount as int_zap_receipts.sql reads it: the human-readable part ends at the last
    `1`; digits and an optional multiplier follow the currency prefix."""
    hrp = re.fullmatch(r"(.*)1[^1]*", bolt11.lower()).group(1)
    digits, unit = re.fullmatch(r"ln[a-z]+?([0-9]+)([munp]?)", hrp).groups()
    per_unit = {"": 100_000_000, "m": 100_000, "u": 100, "n": Decimal("0.1"), "p": Decimal("1e-4")}
    return int(digits) * Decimal(per_unit[unit])


def test_same_arguments_give_the_same_bytes(network):
    again = build_network(URLS, END)
    assert [encode_event(e) for e in again.events] == [encode_event(e) for e in network.events]
    assert {url: [e.id for e in held] for url, held in again.held.items()} == {
        url: [e.id for e in held] for url, held in network.held.items()
    }


def test_another_seed_gives_another_network(network):
    other = build_network(URLS, END, seed=2)
    assert not {e.id for e in other.events} & {e.id for e in network.events}


def test_the_relays_ports_change_the_urls_not_the_shape(network):
    other = build_network([f"ws://127.0.0.1:{port}" for port in (5, 6, 7, 8)], END)
    assert Counter((e.kind, e.created_at) for e in other.events) == Counter(
        (e.kind, e.created_at) for e in network.events
    )
    assert [len(held) for held in other.held.values()] == [
        len(held) for held in network.held.values()
    ]


def test_every_event_verifies_and_survives_the_wire(network):
    verifier = EventVerifier()
    assert [verifier.reject_reason(e) for e in network.events] == [None] * len(network.events)
    # what a relay sends back is what was generated
    assert all(decode_event(encode_event(e)) == e for e in network.events)
    assert len({e.id for e in network.events}) == len(network.events)


def test_events_are_the_48_hours_before_the_current_hour(network):
    assert network.end == END and network.start == END - DEMO_HOURS * HOUR
    assert all(network.start <= e.created_at < network.end for e in network.events)
    # the last 48 closed hours: at most 49 hours old
    assert all(NOW - 49 * HOUR < e.created_at < NOW for e in network.events)
    hours = Counter((e.created_at - network.start) // HOUR for e in network.events if e.kind == 1)
    assert set(hours) == set(range(DEMO_HOURS))  # notes in every hour


def test_a_small_network_of_every_kind(network):
    kinds = Counter(e.kind for e in network.events)
    assert set(kinds) == KINDS
    assert 1000 <= len(network.events) <= 4000
    assert kinds[1] > 300 and kinds[7] > 300 and kinds[9735] > 30 and kinds[30023] >= 10


def test_zap_receipts_claim_real_amounts(network):
    receipts = [e for e in network.events if e.kind == 9735]
    verifier = EventVerifier()
    for receipt in receipts:
        tags = {t[0]: t[1] for t in receipt.tags}
        request = msgspec.json.decode(tags["description"], type=Event)
        amount_msat = int(next(t[1] for t in request.tags if t[0] == "amount"))
        assert request.kind == 9734 and verifier.reject_reason(request) is None
        assert sats_claimed(tags["bolt11"]) * 1000 == amount_msat
        assert set(tags["bolt11"].split("1p", 1)[1]) <= set(BECH32)
        assert tags["p"] == next(t[1] for t in request.tags if t[0] == "p")


@pytest.mark.parametrize(
    ("sats", "amount"),
    [(21, "210n"), (69, "690n"), (100, "1u"), (2100, "21u"), (100_000, "1m"), (1234, "12340n")],
)
def test_bolt11_amount_uses_the_largest_exact_unit(sats, amount):
    assert bolt11_amount(sats) == amount
    assert sats_claimed(f"lnbc{amount}1pqqq") == sats


def test_monitor_reports_are_read_as_nip66(network):
    reports = [report_from_event(e) for e in network.events if e.kind == 30166]
    assert reports and None not in reports
    assert {r.relay_url for r in reports} == {normalize_relay_url(u) for u in URLS}
    assert all(r.rtt_open_ms and r.rtt_read_ms and r.rtt_read_ms > r.rtt_open_ms for r in reports)
    names = {r.info.name for r in reports}
    assert names == {p.name for p in RELAY_PROFILES}
    # one report per relay per hour from the hourly monitor, except while the vault was down
    hourly = Counter((r.relay_url, (r.observed_at - network.start) // HOUR) for r in reports)
    assert len({hour for _, hour in hourly}) == DEMO_HOURS


def test_long_form_articles_edits_and_deletions(network):
    articles = [e for e in network.events if e.kind == 30023]
    slugs = Counter(next(t[1] for t in e.tags if t[0] == "d") for e in articles)
    assert len(slugs) == 10 and max(slugs.values()) == 2  # some edited once
    deletions = [e for e in network.events if e.kind == 5]
    by_id = {e.id: e for e in network.events}
    own = [
        d
        for d in deletions
        for t in d.tags
        if t[0] == "e" and t[1] in by_id and by_id[t[1]].pubkey == d.pubkey
    ]
    foreign = [
        d
        for d in deletions
        for t in d.tags
        if t[0] == "e" and t[1] in by_id and by_id[t[1]].pubkey != d.pubkey
    ]
    by_address = [d for d in deletions if any(t[0] == "a" for t in d.tags)]
    assert len(own) >= 10 and len(foreign) == 2 and len(by_address) == 1


def test_relays_overlap_and_each_holds_something_alone(network):
    held = {url: {e.id for e in events} for url, events in network.held.items()}
    assert set(held) == set(URLS)
    every = {e.id for e in network.events}
    assert set().union(*held.values()) == every
    for url, ids in held.items():
        others = set().union(*(v for u, v in held.items() if u != url))
        assert ids != every and ids - others, url
    copies = Counter(sum(e.id in ids for ids in held.values()) for e in network.events)
    assert copies[1] and copies[2] and copies[3]


def test_load_order_is_newest_first(network):
    for url in URLS:
        order = network.load_order(url)
        assert [e.created_at for e in order] == sorted((e.created_at for e in order), reverse=True)


def test_events_name_only_the_demo_relays(network):
    """Relay URLs in events enter the catalog and get crawled: none may lead off the machine."""
    pattern = re.compile(r"wss?://[^\s\"',\\]+")
    named = set()
    for e in network.events:
        if e.kind == 30166:  # its content is the relay's own NIP-11 document
            continue
        named |= set(pattern.findall(json.dumps([e.tags, e.content])))
    assert named and named <= set(URLS)
