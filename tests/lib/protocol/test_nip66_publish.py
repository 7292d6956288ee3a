"""Protects what our NIP-66 monitor publishes: the key as people write it, geohashes, and
the tags of a kind-30166 report (NIP-66 as it stands: one tag per value, strings only)."""

from __future__ import annotations

import pytest

from nostr_assets.lib.protocol.event import EventVerifier
from nostr_assets.lib.protocol.keys import InvalidSecretKey, bech32_encode, parse_secret_key
from nostr_assets.lib.protocol.nip66_publish import (
    Observation,
    geohash,
    monitor_announcement,
    network_of,
    relay_report,
    relay_report_tags,
)

# NIP-19's own example key pair.
NSEC = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
SECRET_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
NPUB = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"


def test_a_key_reads_as_hex_or_nsec_and_never_shows_itself():
    from_nsec, from_hex = parse_secret_key(NSEC), parse_secret_key(SECRET_HEX.upper())
    assert from_nsec == from_hex and from_nsec.secret.hex() == SECRET_HEX
    assert from_nsec.npub == NPUB
    assert SECRET_HEX not in repr(from_nsec) and SECRET_HEX not in str(from_nsec)
    assert bech32_encode("nsec", bytes.fromhex(SECRET_HEX)) == NSEC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        NSEC[:-1] + ("q" if NSEC[-1] != "q" else "p"),  # checksum broken
        "0" * 64,  # zero is no key
        "f" * 64,  # past the curve order
        NPUB,  # a public key is not a secret one
    ],
)
def test_a_bad_key_is_refused_without_repeating_it(text):
    with pytest.raises(InvalidSecretKey) as refused:
        parse_secret_key(text)
    assert not text or text not in str(refused.value)


def test_geohash_and_network():
    assert geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"  # the geohash.org example point
    assert geohash(52.52, 13.405) == "u33dc"  # Berlin: u33dc0cpp...
    assert network_of("wss://relay.example.com/path") == "clearnet"
    assert network_of("ws://abcdefghijklmnop.onion") == "tor"
    assert network_of("ws://relay.i2p:8080") == "i2p"


def observation(**changes) -> Observation:
    base = {
        "relay_url": "wss://relay.example.com",
        "observed_at": 1_790_000_000,
        "rtt_open_ms": 234.4,
        "rtt_read_ms": 81.6,
        "nip11_raw": '{"name":"example","supported_nips":[1,11,42,45,77]}',
        "supported_nips": (1, 11, 42, 45, 77),
        "auth_required": True,
        "payment_required": False,
        "reads_without_auth": True,
        "requires_auth_for_read": False,
        "answers_count": True,
        "answers_negentropy": False,
        "latitude": 52.52,
        "longitude": 13.405,
        "country_code": "de",
        "asn": 24940,
    }
    return Observation(**{**base, **changes})


def test_report_tags_say_what_was_seen():
    tags = relay_report_tags(observation())
    assert tags == [
        ["d", "wss://relay.example.com"],
        ["rtt-open", "234"],
        ["rtt-read", "82"],
        ["n", "clearnet"],
        # 77 claimed but NEG-OPEN was not answered: left out; 42 claimed, not contradicted.
        ["N", "1"],
        ["N", "11"],
        ["N", "42"],
        ["N", "45"],
        # The document says auth is required, but the relay answered a REQ without it.
        ["R", "!auth"],
        ["R", "!payment"],
        ["g", "u33dc"],
        ["L", "ISO-3166-1"],
        ["l", "DE", "ISO-3166-1"],
        ["L", "IANA-asn"],
        ["l", "24940", "IANA-asn"],
    ]
    assert all(isinstance(v, str) for tag in tags for v in tag)


def test_what_was_not_observed_is_not_reported():
    bare = observation(
        rtt_read_ms=None,
        nip11_raw=None,
        supported_nips=None,
        auth_required=None,
        payment_required=None,
        reads_without_auth=None,
        requires_auth_for_read=None,
        answers_count=None,
        answers_negentropy=None,
        latitude=None,
        longitude=None,
        country_code=None,
        asn=None,
    )
    assert relay_report_tags(bare) == [
        ["d", "wss://relay.example.com"],
        ["rtt-open", "234"],
        ["n", "clearnet"],
    ]


def test_reports_are_signed_the_same_way_twice():
    key = parse_secret_key(NSEC)
    first, again = relay_report(key, observation()), relay_report(key, observation())
    assert first == again  # same id and signature: a re-run is a duplicate, not a new event
    assert first.kind == 30166 and first.pubkey == key.pubkey and first.created_at == 1_790_000_000
    assert EventVerifier().reject_reason(first) is None
    announcement = monitor_announcement(key, 1_790_000_000, 3600, {"open": 10000, "read": 15000})
    assert ["frequency", "3600"] in announcement.tags
    assert ["timeout", "10000", "open"] in announcement.tags
    assert ["c", "negentropy"] in announcement.tags
