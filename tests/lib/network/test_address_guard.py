"""Protects the address guard against IPv4 addresses wrapped in IPv6.

An IPv6 literal can carry an IPv4 address (mapped, SIIT-translated, NAT64, 6to4) or lead through
a tunnel or translator (Teredo, local-use NAT64). Every wrapping of a refused IPv4 address must be
refused for the same reason, and the tunnels we cannot judge are refused outright; the verdict on
a public address must not change by wrapping it. The plain IPv4/IPv6 table lives in
tests/lib/protocol/test_relay_url.py.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nostr_assets.lib.network.address_guard import AddressRefused, classify_address, resolve_guarded

# Teredo (RFC 4380, section 4): server 65.54.227.120, client 192.0.2.45 port 40000 stored XORed.
TEREDO = "2001:0:4136:e378:8000:63bf:3fff:fdd2"
# The same layout with loopback as the client: 127.0.0.1 XOR 0xffffffff = 80ff:fffe.
TEREDO_LOOPBACK = "2001:0:4136:e378::80ff:fffe"


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("64:ff9b:1::7f00:1", "private"),  # local-use NAT64 (RFC 8215), refused outright
        ("64:ff9b:1:ffff::808:808", "private"),  # ... even when it wraps a public address
        ("::ffff:0:7f00:1", "loopback"),  # SIIT-translated 127.0.0.1 (RFC 2765)
        ("::ffff:0:a9fe:a9fe", "link_local"),  # SIIT-translated 169.254.169.254
        ("::ffff:0:808:808", None),  # SIIT-translated 8.8.8.8: public
        ("::ffff:0:0", "unspecified"),  # IPv4-mapped 0.0.0.0
        ("64:ff9b::7f00:1", "loopback"),  # well-known NAT64 of 127.0.0.1
        ("64:ff9b::808:808", None),
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:808:808::1", None),
        (TEREDO, "reserved"),
        (TEREDO_LOOPBACK, "reserved"),
        ("2001:2::1", "reserved"),  # benchmarking, like 198.18.0.0/15
        ("2001:200::1", None),  # just past the IETF protocol assignments (2001::/23)
        ("2606:4700:4700::1111", None),
        ("::ffff:0:0:0:1", "reserved"),  # near the wrappings, but outside 2000::/3
        ("100::1", "reserved"),  # discard-only
        ("4000::1", "reserved"),  # unallocated
        ("fe00::1", "reserved"),  # unallocated, between fc00::/7 and fe80::/10
    ],
)
def test_wrapped_ipv4_is_judged(ip: str, reason: str | None) -> None:
    assert classify_address(ip) == reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("wss://[64:ff9b:1::7f00:1]", "private"),
        ("wss://[::ffff:0:7f00:1]", "loopback"),
        (f"wss://[{TEREDO}]", "reserved"),
        (f"wss://[{TEREDO_LOOPBACK}]:7000", "reserved"),
    ],
)
def test_wrapped_literals_never_reach_a_connect(url: str, reason: str) -> None:
    with pytest.raises(AddressRefused) as caught:
        asyncio.run(resolve_guarded(url, allow_private=False))
    assert caught.value.reason == reason


ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
# Bias towards the ranges with rules, so that most examples are refused addresses.
special_ipv4 = st.sampled_from(
    ["127.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8", "240.0.0.0/4"]
).flatmap(
    lambda cidr: st.integers(0, ipaddress.ip_network(cidr).num_addresses - 1).map(
        lambda i: ipaddress.ip_network(cidr)[i]
    )
)


def _wrappings(v4: ipaddress.IPv4Address) -> list[str]:
    n = int(v4)
    return [
        f"::ffff:{v4}",  # mapped, dotted
        str(ipaddress.IPv6Address((0xFFFF << 32) | n)),  # mapped, hex
        str(ipaddress.IPv6Address((0xFFFF << 48) | n)),  # SIIT
        str(ipaddress.IPv6Address((0x64FF9B << 96) | n)),  # NAT64
        str(ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1)),  # 6to4
    ]


@given(st.one_of(ipv4, special_ipv4))
def test_every_wrapping_of_an_ipv4_address_gets_its_verdict(v4: ipaddress.IPv4Address) -> None:
    verdict = classify_address(str(v4))
    assert {ip: classify_address(ip) for ip in _wrappings(v4)} == dict.fromkeys(
        _wrappings(v4), verdict
    )


@given(ipv4, ipv4, st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1))
def test_teredo_is_refused_whoever_it_names(server, client, flags, port) -> None:
    teredo = (0x20010000 << 96) | (int(server) << 64) | (flags << 48) | (port << 32)
    address = ipaddress.IPv6Address(teredo | (int(client) ^ 0xFFFFFFFF))
    assert classify_address(str(address)) == "reserved"


@given(st.integers(0, 2**80 - 1))
def test_local_use_nat64_is_refused_whatever_it_wraps(suffix: int) -> None:
    address = ipaddress.IPv6Address((0x0064FF9B0001 << 80) | suffix)
    assert classify_address(str(address)) == "private"
