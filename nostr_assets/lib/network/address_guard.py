"""The address guard: where a relay URL from a stranger may make the crawler connect.

``resolve_guarded`` resolves the host and refuses private, loopback, link-local (cloud metadata
at 169.254.169.254), multicast and reserved targets, so that a published relay list cannot make
the crawler probe the network it runs in; an IPv6 address that wraps an IPv4 one (mapped,
NAT64, 6to4) is judged as the address it wraps, and tunnels it cannot see through are refused.
Tests set ``allow_private=True`` to reach a relay on 127.0.0.1. Callers should connect to one of
the addresses returned rather than resolve the name again: a second lookup could answer
differently (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from nostr_assets.lib.failures import ErrorClass, GuardReason
from nostr_assets.lib.protocol.relay_url import host_and_port


class AddressRefused(ValueError):
    """A relay whose address the guard will not connect to; ``reason`` is a ``GuardReason``,
    or ``dns_failed`` when the name gives no address."""

    def __init__(self, reason: GuardReason | ErrorClass, address: str | None = None) -> None:
        super().__init__(f"{reason}: {address}" if address else reason)
        self.reason = reason
        self.address = address


def _net(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Checked in this order; the first match names the reason. Written out rather than taken from
# ipaddress.is_private, whose meaning changed between Python 3.11 and 3.13.
_RULES: tuple[
    tuple[GuardReason, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...
] = (
    (GuardReason.UNSPECIFIED, _net("0.0.0.0/32", "::/128")),
    (GuardReason.LOOPBACK, _net("127.0.0.0/8", "::1/128")),
    # 169.254.169.254 is the cloud metadata service (AWS, GCP, Azure): the prize of an SSRF.
    (GuardReason.LINK_LOCAL, _net("169.254.0.0/16", "fe80::/10")),
    (GuardReason.MULTICAST, _net("224.0.0.0/4", "ff00::/8")),
    # 100.64/10 is carrier-grade NAT (RFC 6598): inside someone's network, never a public relay.
    # fec0::/10 is the deprecated IPv6 site-local range, private in practice.
    (
        GuardReason.PRIVATE,
        _net(
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
            "fec0::/10",
            # Local-use NAT64 (RFC 8215): a translator inside one operator's network, and
            # where the IPv4 address sits depends on the prefix length that operator chose
            # (/48 to /96, RFC 6052), so there is nothing sure to look inside.
            "64:ff9b:1::/48",
        ),
    ),
    (
        GuardReason.RESERVED,
        _net(
            "0.0.0.0/8",  # "this network"
            "192.0.0.0/24",  # IETF protocol assignments
            "192.0.2.0/24",
            "198.51.100.0/24",
            "203.0.113.0/24",  # documentation (RFC 5737)
            "198.18.0.0/15",  # benchmarking
            "240.0.0.0/4",  # future use, and 255.255.255.255 broadcast
            "2001:db8::/32",
            "3fff::/20",  # documentation (RFC 3849, RFC 9637)
            # Everything outside 2000::/3, the only IPv6 space allocated for global unicast
            # (RFC 4291, section 2.4), as 240.0.0.0/4 for IPv4: this takes in the deprecated
            # IPv4-compatible ::/96, discard-only 100::/64 and every unassigned block. The
            # ranges with their own reason above (fc00::/7, fe80::/10, ff00::/8 ...) and the
            # IPv4 wrappings in _EMBEDDED are matched first.
            "::/3",
            "4000::/2",
            "8000::/1",
            # IETF protocol assignments (RFC 2928), as 192.0.0.0/24 above; it holds Teredo
            # (2001::/32) and benchmarking (2001:2::/48). Teredo is refused rather than looked
            # inside: it tunnels to a client behind NAT (RFC 4380) whose IPv4 address is stored
            # XORed and is the NAT's outside address, not the host's, so judging it proves
            # little, and a public relay does not live behind a client tunnel.
            "2001::/23",
        ),
    ),
)
# IPv6 prefixes that carry an IPv4 address inside, with the shift that brings it to the low 32
# bits: such an address is judged as the IPv4 address it carries, so 127.0.0.1 is loopback
# however it is wrapped. Checked before _RULES.
_EMBEDDED: tuple[tuple[ipaddress.IPv6Network, int], ...] = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), 0),  # IPv4-mapped (RFC 4291)
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), 0),  # IPv4-translated, SIIT (RFC 2765)
    (ipaddress.IPv6Network("64:ff9b::/96"), 0),  # well-known NAT64 prefix (RFC 6052)
    (ipaddress.IPv6Network("2002::/16"), 80),  # 6to4: bits 16..47 (RFC 3056)
)


def classify_address(ip: str) -> GuardReason | None:
    """Return why an IP address is refused, or ``None`` when it is a public address.

    A string that is not an IP address at all is refused as ``not_an_address``.
    """
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return GuardReason.NOT_AN_ADDRESS
    if isinstance(addr, ipaddress.IPv6Address):
        for prefix, shift in _EMBEDDED:
            if addr in prefix:
                embedded = ipaddress.IPv4Address(int(addr) >> shift & 0xFFFFFFFF)
                return classify_address(str(embedded))
    for reason, networks in _RULES:
        if any(addr.version == net.version and addr in net for net in networks):
            return reason
    return None


async def resolve_guarded(url: str, allow_private: bool, timeout: float = 5.0) -> list[str]:
    """Resolve a relay's host and return its IP addresses in resolver order, without duplicates.

    Raises ``InvalidRelayUrl`` for a bad URL, and ``AddressRefused`` when the name does not
    resolve (``dns_failed``) or, unless ``allow_private``, when ANY address is
    refused: a name that answers with one public and one private address is either
    misconfigured or an attack, and a later connect could pick the private one.
    """
    host, port, _ = host_and_port(url)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = await _lookup(host, port, timeout)
    if not allow_private:
        for ip in addresses:
            reason = classify_address(ip)
            if reason is not None:
                raise AddressRefused(reason, ip)
    return addresses


async def _lookup(host: str, port: int, timeout: float) -> list[str]:
    """Resolve a DNS name through the event loop's resolver; distinct addresses, in order."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except TimeoutError:
        raise AddressRefused(ErrorClass.DNS_FAILED, f"{host} (no answer in {timeout}s)") from None
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        raise AddressRefused(ErrorClass.DNS_FAILED, host) from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise AddressRefused(ErrorClass.DNS_FAILED, host)
    return addresses
