"""Protects relay URL normalisation and the address guard.

Relay URLs come from strangers' events: one relay must get one spelling (or the catalogue counts
it twice), anything but plain ws/wss must be refused with a countable reason, and no URL may
lead the crawler to a private, loopback, link-local (cloud metadata) or reserved address unless
configuration allows it.
"""

from __future__ import annotations

import asyncio

import pytest

from nostr_assets.lib.network.address_guard import AddressRefused, classify_address, resolve_guarded
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, host_and_port, normalize_relay_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("wss://relay.damus.io", "wss://relay.damus.io"),
        ("  WSS://Relay.Damus.IO/  ", "wss://relay.damus.io"),
        ("wss://relay.damus.io:443", "wss://relay.damus.io"),
        ("ws://relay.example.com:80/", "ws://relay.example.com"),
        ("ws://relay.example.com:443", "ws://relay.example.com:443"),
        ("wss://relay.example.com:80", "wss://relay.example.com:80"),
        ("wss://relay.example.com:7447/nostr/", "wss://relay.example.com:7447/nostr"),
        ("wss://relay.example.com/Path//", "wss://relay.example.com/Path"),
        ("wss://relay.example.com/?token=secret#frag", "wss://relay.example.com"),
        ("wss://relay.example.com/inbox?x=1", "wss://relay.example.com/inbox"),
        ("wss://relay.example.com.", "wss://relay.example.com"),
        ("wss://bücher.example", "wss://xn--bcher-kva.example"),
        ("wss://BÜCHER.example", "wss://xn--bcher-kva.example"),
        ("wss://[2001:DB8:0:0::1]:443/", "wss://[2001:db8::1]"),
        ("ws://[::1]:7000", "ws://[::1]:7000"),
        ("ws://127.0.0.1:7000", "ws://127.0.0.1:7000"),
        ("wss://_relay.example.com", "wss://_relay.example.com"),
        # Each spelling of a host gets the ASCII spelling's verdict (issue 10): a trailing
        # ideographic full stop, an ASCII label beside a Unicode one, full-width digits, emoji.
        ("wss://bücher.example\u3002", "wss://xn--bcher-kva.example"),
        ("wss://_relay.bücher.example", "wss://_relay.xn--bcher-kva.example"),
        ("wss://ab--c.bücher.example", "wss://ab--c.xn--bcher-kva.example"),
        ("wss://\uff11\uff12\uff17.\uff10.\uff10.\uff11", "wss://127.0.0.1"),
        ("wss://\U0001f310.example", "wss://xn--wg8h.example"),
    ],
)
def test_normalize(url: str, expected: str) -> None:
    assert normalize_relay_url(url) == expected
    assert normalize_relay_url(expected) == expected  # idempotent


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (None, "not_a_string"),
        ("https://relay.example.com", "bad_scheme"),
        ("http://relay.example.com", "bad_scheme"),
        ("relay.example.com", "bad_scheme"),
        ("wss:relay.example.com", "no_host"),
        ("wss://", "no_host"),
        ("wss://:443", "no_host"),
        ("wss://user:pass@relay.example.com", "has_credentials"),
        ("wss://@relay.example.com", "has_credentials"),
        ("wss://relay.example.com:0", "bad_port"),
        ("wss://relay.example.com:65536", "bad_port"),
        ("wss://relay.example.com:", "bad_port"),
        ("wss://relay.example.com:44a", "bad_port"),
        ("wss://relay.example.com:-1", "bad_port"),
        ("wss://relay.example.com:١٢٣", "bad_port"),  # Arabic-Indic digits
        ("wss://" + "a" * 600 + ".com", "too_long"),
        ("wss://relay.example.com/" + "p" * 500, "too_long"),
        ("wss://relay example.com", "bad_characters"),
        ("wss://relay.example.com/\npath", "bad_characters"),
        ("wss://relay.example.com\\@evil.com", "bad_characters"),
        ("wss://[::1", "bad_host"),
        ("wss://[not-ipv6]", "bad_host"),
        ("wss://[fe80::1%eth0]", "bad_host"),
        ("wss://[::1]x", "bad_host"),
        ("wss://127.1", "bad_host"),  # inet_aton would read this as 127.0.0.1
        ("wss://0x7f.0.0.1", "bad_host"),
        ("wss://256.1.1.1", "bad_host"),
        ("wss://relay..example.com", "bad_host"),
        ("wss://-relay.example.com", "bad_host"),
        ("wss://relay.exa$mple.com", "bad_host"),
        ("wss://" + "a" * 64 + ".com", "bad_host"),
        # Numeric hosts spelled with an ideographic full stop or full-width digits (issue 10:
        # "2\u30021301706433" came out as "wss://2.1301706433", which was refused next time).
        ("wss://2\u30021301706433", "bad_host"),
        ("wss://\uff11\uff12\uff17.\uff11", "bad_host"),
        ("wss://0x7f\uff0e1", "bad_host"),
        # Unicode whitespace: str.strip() would take it off a path's end on the next pass.
        ("wss://relay.example.com/a\u00a0/", "bad_characters"),
        ("wss://relay\u3000example.com", "bad_characters"),
    ],
)
def test_refused_urls(url: object, reason: str) -> None:
    with pytest.raises(InvalidRelayUrl) as caught:
        normalize_relay_url(url)  # type: ignore[arg-type]
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_host_and_port() -> None:
    assert host_and_port("wss://Relay.Example.com") == ("relay.example.com", 443, True)
    assert host_and_port("ws://relay.example.com") == ("relay.example.com", 80, False)
    assert host_and_port("ws://[::1]:7000/x") == ("::1", 7000, False)
    with pytest.raises(InvalidRelayUrl):
        host_and_port("ftp://relay.example.com")


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("1.1.1.1", None),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("100.63.255.255", None),  # just below the CGNAT range
        ("100.128.0.0", None),  # just above it
        ("172.32.0.1", None),  # just above 172.16/12
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("169.254.169.254", "link_local"),  # cloud metadata service
        ("fe80::1", "link_local"),
        ("fe80::1%eth0", "link_local"),  # scoped, as getaddrinfo may report it
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fd00::1", "private"),
        ("fc00::1", "private"),
        ("::ffff:10.1.2.3", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
        ("192.0.2.1", "reserved"),
        ("198.51.100.7", "reserved"),
        ("203.0.113.9", "reserved"),
        ("2001:db8::1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("240.0.0.1", "reserved"),
        ("0.1.2.3", "reserved"),
        ("not an ip", "not_an_address"),
    ],
)
def test_classify_address(ip: str, reason: str | None) -> None:
    assert classify_address(ip) == reason


def resolve(url: str, allow_private: bool) -> list[str]:
    return asyncio.run(resolve_guarded(url, allow_private, timeout=5.0))


def test_resolve_literals() -> None:
    assert resolve("ws://127.0.0.1:7000", True) == ["127.0.0.1"]
    assert resolve("wss://[2606:4700::1]", False) == ["2606:4700::1"]
    assert resolve("wss://1.1.1.1", False) == ["1.1.1.1"]


def test_resolve_refuses_private_targets() -> None:
    for url, reason in [
        ("ws://127.0.0.1:7000", "loopback"),
        ("ws://[::1]", "loopback"),
        ("wss://169.254.169.254/latest", "link_local"),
        ("wss://[::ffff:192.168.0.1]", "private"),
        ("wss://localhost:7000", "loopback"),  # through the resolver, not a literal
    ]:
        with pytest.raises(AddressRefused) as caught:
            resolve(url, False)
        assert caught.value.reason == reason, url


def test_resolve_names() -> None:
    addresses = resolve("ws://localhost:7000", True)
    assert addresses and all(classify_address(ip) == "loopback" for ip in addresses)
    assert len(addresses) == len(set(addresses))


def test_resolve_dns_failure() -> None:
    # .invalid is reserved by RFC 6761 and never resolves.
    with pytest.raises(AddressRefused) as caught:
        resolve("wss://no-such-relay.invalid", True)
    assert caught.value.reason == "dns_failed"


def test_resolve_invalid_url() -> None:
    with pytest.raises(InvalidRelayUrl):
        resolve("https://relay.example.com", True)
