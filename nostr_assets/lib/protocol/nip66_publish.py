"""What a NIP-66 monitor publishes, built from our own hourly observations.

* kind 30166, one per relay observed in an hour: `d` the relay's normalised URL, round trips
  (`rtt-open`, `rtt-read`; no `rtt-write`, which we never test), `n` its network, `N` the NIPs
  it supports, `R` its requirements, `g` a geohash, `l` labels for its country and AS, and its
  NIP-11 document as content. Every tag value is a string, one tag per value.
* kind 10166, the monitor's announcement: how often it publishes, its timeouts, its checks.
* kind 0, the monitor's profile, and kind 10002, where it publishes.

Pure: events are built and signed here and sent by ``network/publisher.py``. Signing is
deterministic for one input (BIP-340's auxiliary randomness is derived from the event), so
re-publishing an hour sends the very same events, which relays recognise as duplicates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nostr_assets.lib.protocol.event import Event, sign_event
from nostr_assets.lib.protocol.keys import MonitorKey

RELAY_DISCOVERY_KIND = 30166
MONITOR_ANNOUNCEMENT_KIND = 10166

# NIPs our probe checks itself: for these, what we saw overrides what the document claims.
# NIP-42 is only seen when the relay demands AUTH; not seeing it proves nothing.
OBSERVED_NIPS = ("1", "11", "45", "77")
# The checks our hourly probe performs, as NIP-66's `c` tags name them (lowercase).
CHECKS = ("open", "read", "auth", "nip11", "dns", "geo", "count", "negentropy")
# City-level databases place an address within tens of kilometres: five geohash characters
# (a cell about 5 km across) say as much as is known, and no more.
GEOHASH_PRECISION = 5
_GEOHASH_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(latitude: float, longitude: float, precision: int = GEOHASH_PRECISION) -> str:
    """The NIP-52 geohash of a point: alternate longitude and latitude bisections, 5 bits a
    character."""
    lat_range, lon_range = [-90.0, 90.0], [-180.0, 180.0]
    chars: list[str] = []
    bits, value, even = 0, 0, True
    while len(chars) < precision:
        interval, target = (lon_range, longitude) if even else (lat_range, latitude)
        middle = (interval[0] + interval[1]) / 2
        value <<= 1
        if target >= middle:
            value |= 1
            interval[0] = middle
        else:
            interval[1] = middle
        even = not even
        bits += 1
        if bits == 5:
            chars.append(_GEOHASH_ALPHABET[value])
            bits, value = 0, 0
    return "".join(chars)


def network_of(relay_url: str) -> str:
    """NIP-66's `n`: clearnet, tor, i2p or loki, by the host's top-level domain."""
    host = relay_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
    for suffix, network in ((".onion", "tor"), (".i2p", "i2p"), (".loki", "loki")):
        if host.endswith(suffix):
            return network
    return "clearnet"


@dataclass(frozen=True)
class Observation:
    """One relay in one snapshot hour, as raw.relay_snapshots and raw.relay_geolocations have
    it: the fields a 30166 event reports."""

    relay_url: str
    observed_at: int  # unix seconds; the event's created_at
    rtt_open_ms: float | None = None
    rtt_read_ms: float | None = None
    nip11_raw: str | None = None
    supported_nips: tuple[int, ...] | None = None  # from the NIP-11 document
    auth_required: bool | None = None  # NIP-11 limitation.auth_required
    payment_required: bool | None = None  # NIP-11 limitation.payment_required
    reads_without_auth: bool | None = None
    requires_auth_for_read: bool | None = None
    answers_count: bool | None = None
    answers_negentropy: bool | None = None
    latitude: float | None = None
    longitude: float | None = None
    country_code: str | None = None
    asn: int | None = None


def _supported_nips(seen: Observation) -> list[str]:
    """The document's NIPs, corrected by what the probe saw for the NIPs it checks."""
    nips = {str(n) for n in seen.supported_nips or ()}
    observed = {
        "1": None if seen.reads_without_auth is None else True,
        "11": True if seen.nip11_raw else None,
        "42": True if seen.requires_auth_for_read else None,
        "45": seen.answers_count,
        "77": seen.answers_negentropy,
    }
    for nip, seen_it in observed.items():
        if seen_it is True:
            nips.add(nip)
        elif seen_it is False:
            nips.discard(nip)
    return sorted(nips, key=int)


def _requirement(name: str, value: bool | None) -> list[list[str]]:
    return [] if value is None else [["R", name if value else f"!{name}"]]


def relay_report_tags(seen: Observation) -> list[list[str]]:
    """The tags of a kind-30166 event for one observation."""
    tags: list[list[str]] = [["d", seen.relay_url]]
    if seen.rtt_open_ms is not None:
        tags.append(["rtt-open", str(round(seen.rtt_open_ms))])
    if seen.rtt_read_ms is not None:
        tags.append(["rtt-read", str(round(seen.rtt_read_ms))])
    tags.append(["n", network_of(seen.relay_url)])
    tags += [["N", nip] for nip in _supported_nips(seen)]
    # Seen beats claimed: a relay that answered a REQ without AUTH does not require it.
    auth = seen.requires_auth_for_read
    tags += _requirement("auth", seen.auth_required if auth is None else auth)
    tags += _requirement("payment", seen.payment_required)
    if seen.latitude is not None and seen.longitude is not None:
        tags.append(["g", geohash(seen.latitude, seen.longitude)])
    if seen.country_code:
        tags += [["L", "ISO-3166-1"], ["l", seen.country_code.upper(), "ISO-3166-1"]]
    if seen.asn is not None:
        tags += [["L", "IANA-asn"], ["l", str(seen.asn), "IANA-asn"]]
    return tags


def _signed(key: MonitorKey, created_at: int, kind: int, tags: list[list[str]], content: str):
    # Deterministic auxiliary randomness (BIP-340 allows any): the same event, signed again,
    # is byte for byte the same, so a re-run publishes duplicates and nothing new.
    aux = hashlib.sha256(repr((created_at, kind, tags, content)).encode()).digest()
    return sign_event(key.secret, created_at, kind, tags, content, aux)


def relay_report(key: MonitorKey, seen: Observation) -> Event:
    """The signed kind-30166 event for one relay observed in one hour."""
    content = seen.nip11_raw or ""
    return _signed(key, seen.observed_at, RELAY_DISCOVERY_KIND, relay_report_tags(seen), content)


def monitor_announcement(
    key: MonitorKey, created_at: int, frequency_s: int, timeouts_ms: dict[str, int]
) -> Event:
    """The signed kind-10166 announcement: publishing frequency, timeout per check, checks.

    The timeout tag follows NIP-66's text: index 1 the timeout in milliseconds, index 2 the
    check it applies to.
    """
    tags = [["frequency", str(frequency_s)]]
    tags += [["timeout", str(ms), check] for check, ms in sorted(timeouts_ms.items())]
    tags += [["c", check] for check in CHECKS]
    return _signed(key, created_at, MONITOR_ANNOUNCEMENT_KIND, tags, "")


def monitor_profile(key: MonitorKey, created_at: int, profile: dict[str, Any]) -> Event:
    """The monitor's kind-0 profile."""
    content = json.dumps(profile, sort_keys=True, ensure_ascii=False)
    return _signed(key, created_at, 0, [], content)


def monitor_relay_list(key: MonitorKey, created_at: int, relays: list[str]) -> Event:
    """The monitor's kind-10002 relay list: where its reports can be read."""
    return _signed(key, created_at, 10002, [["r", url] for url in relays], "")
