"""Relay URLs from untrusted events: one canonical spelling, and a guard on where they point.

Relay URLs arrive in strangers' events (NIP-65 lists, kind-3 content, tag hints), so two jobs
live here:

* ``normalize_relay_url`` gives every relay one spelling, so that ``wss://Relay.Example.com:443/``
  and ``wss://relay.example.com`` become one catalogue row, and refuses anything that is not a
  plain ``ws``/``wss`` URL, each refusal with a short ``reason`` code that callers count.
* ``resolve_guarded`` resolves the host and refuses private, loopback, link-local (cloud metadata
  at 169.254.169.254), multicast and reserved targets, so that a published relay list cannot make
  the crawler probe the network it runs in. Tests set ``allow_private=True`` to reach a relay on
  127.0.0.1. Callers should connect to one of the addresses returned rather than resolve the
  name again: a second lookup could answer differently (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

import idna

MAX_URL_LENGTH = 512
DEFAULT_PORTS = {"ws": 80, "wss": 443}

# Whitespace or control characters inside a URL: never part of a real relay address, and a
# classic way to smuggle a second host past a naive parser.
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
# Characters a DNS label may carry once IDNA has turned it into ASCII. Underscore is allowed
# because some relays are published under names such as ``_relay.example.com``.
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
# A last label that is a number (decimal, hex or octal form): browsers and inet_aton read such
# hosts as IPv4 ("127.1", "0x7f.1"), so anything of this shape must be a plain dotted quad.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class InvalidRelayUrl(ValueError):
    """A relay URL refused by ``normalize_relay_url``; ``reason`` is a short stable code."""

    def __init__(self, reason: str, url: object = None) -> None:
        super().__init__(f"{reason}: {url!r}" if url is not None else reason)
        self.reason = reason
        self.url = url


class AddressRefused(ValueError):
    """A relay whose address the guard will not connect to; ``reason`` is a short stable code."""

    def __init__(self, reason: str, address: str | None = None) -> None:
        super().__init__(f"{reason}: {address}" if address else reason)
        self.reason = reason
        self.address = address


def _normalize_host(raw_host: str, url: str) -> tuple[str, bool]:
    """Return the host as written in a canonical URL, and whether it is an IPv6 literal."""
    if raw_host.startswith("["):
        if not raw_host.endswith("]"):
            raise InvalidRelayUrl("bad_host", url)
        literal = raw_host[1:-1]
        if "%" in literal:  # a zone id only means something on the crawler's own machine
            raise InvalidRelayUrl("bad_host", url)
        try:
            return f"[{ipaddress.IPv6Address(literal).compressed}]", True
        except ValueError:
            raise InvalidRelayUrl("bad_host", url) from None
    host = raw_host.lower()
    # "relay.example.com." names the same host as "relay.example.com".
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise InvalidRelayUrl("no_host", url)
    if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        try:
            return str(ipaddress.IPv4Address(host)), False
        except ValueError:
            raise InvalidRelayUrl("bad_host", url) from None
    if host.isascii():
        # ASCII names skip the IDNA codec, which refuses the underscores real DNS allows.
        ascii_host = host
    else:
        try:
            ascii_host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise InvalidRelayUrl("bad_host", url) from None
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise InvalidRelayUrl("bad_host", url)
    return ascii_host, False


def normalize_relay_url(url: str) -> str:
    """Return the canonical spelling of a ``ws``/``wss`` relay URL or raise ``InvalidRelayUrl``.

    Scheme and host are lowercased, the host is IDNA-encoded, default ports (80 for ws, 443 for
    wss) and trailing slashes are dropped, and so are the fragment and the query. The query is
    dropped because relay lists use it for per-user tokens and tracking tags (``?ref=...``) that
    should neither be stored nor split one relay into many catalogue rows; a relay that needs a
    query to work is rare enough to lose.
    """
    if not isinstance(url, str):
        raise InvalidRelayUrl("not_a_string", url)
    text = url.strip()
    if not text:
        raise InvalidRelayUrl("empty", url)
    if len(text) > MAX_URL_LENGTH:
        raise InvalidRelayUrl("too_long", text[:64] + "...")
    if _BAD_CHARS.search(text):
        raise InvalidRelayUrl("bad_characters", text)
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise InvalidRelayUrl("bad_host", text) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidRelayUrl("bad_scheme", text)
    netloc = parts.netloc
    if "@" in netloc:
        raise InvalidRelayUrl("has_credentials", text)
    if not netloc:
        raise InvalidRelayUrl("no_host", text)

    # Split host and port by hand: urlsplit accepts "host:" and lowercases without checking.
    if netloc.startswith("["):
        close = netloc.find("]")
        raw_host, rest = netloc[: close + 1], netloc[close + 1 :]
        if close < 0 or (rest and not rest.startswith(":")):
            raise InvalidRelayUrl("bad_host", text)
        port_text = rest[1:] if rest else None
    else:
        raw_host, sep, port_text = netloc.partition(":")
        if not sep:
            port_text = None
    if not raw_host:
        raise InvalidRelayUrl("no_host", text)
    host, _ = _normalize_host(raw_host, text)

    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not port_text.isascii():
            raise InvalidRelayUrl("bad_port", text)
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise InvalidRelayUrl("bad_port", text)
        if port == DEFAULT_PORTS[scheme]:
            port = None

    path = parts.path.rstrip("/")
    result = f"{scheme}://{host}" + (f":{port}" if port is not None else "") + path
    if len(result) > MAX_URL_LENGTH:  # IDNA can lengthen a host
        raise InvalidRelayUrl("too_long", result[:64] + "...")
    return result


def host_and_port(url: str) -> tuple[str, int, bool]:
    """Return ``(host, port, tls)`` of a relay URL; IPv6 hosts come without brackets."""
    canonical = normalize_relay_url(url)
    parts = urlsplit(canonical)
    tls = parts.scheme == "wss"
    host = parts.hostname or ""
    return host, parts.port or DEFAULT_PORTS[parts.scheme], tls


def _net(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Checked in this order; the first match names the reason. Written out rather than taken from
# ipaddress.is_private, whose meaning changed between Python 3.11 and 3.13.
_RULES: tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...] = (
    ("unspecified", _net("0.0.0.0/32", "::/128")),
    ("loopback", _net("127.0.0.0/8", "::1/128")),
    # 169.254.169.254 is the cloud metadata service (AWS, GCP, Azure): the prize of an SSRF.
    ("link_local", _net("169.254.0.0/16", "fe80::/10")),
    ("multicast", _net("224.0.0.0/4", "ff00::/8")),
    # 100.64/10 is carrier-grade NAT (RFC 6598): inside someone's network, never a public relay.
    # fec0::/10 is the deprecated IPv6 site-local range, private in practice.
    (
        "private",
        _net(
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
            "fec0::/10",
        ),
    ),
    (
        "reserved",
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
            "100::/64",  # discard-only
            "::/96",  # deprecated IPv4-compatible addresses
        ),
    ),
)
# IPv6 prefixes that carry an IPv4 address inside: judge the IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def classify_address(ip: str) -> str | None:
    """Return why an IP address is refused, or ``None`` when it is a public address.

    A string that is not an IP address at all is refused as ``"invalid"``.
    """
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "invalid"
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None:
            return classify_address(str(embedded))
    for reason, networks in _RULES:
        if any(addr.version == net.version and addr in net for net in networks):
            return reason
    return None


async def resolve_guarded(url: str, allow_private: bool, timeout: float = 5.0) -> list[str]:
    """Resolve a relay's host and return its IP addresses in resolver order, without duplicates.

    Raises ``InvalidRelayUrl`` for a bad URL, and ``AddressRefused`` when the name does not
    resolve ("dns_failed", "dns_timeout") or, unless ``allow_private``, when ANY address is
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
        raise AddressRefused("dns_timeout", host) from None
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        raise AddressRefused("dns_failed", host) from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise AddressRefused("dns_failed", host)
    return addresses
