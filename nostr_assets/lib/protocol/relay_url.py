"""Relay URLs from untrusted events: one canonical spelling.

Relay URLs arrive in strangers' events (NIP-65 lists, kind-3 content, tag hints).
``normalize_relay_url`` gives every relay one spelling, so that ``wss://Relay.Example.com:443/``
and ``wss://relay.example.com`` become one catalogue row, and refuses anything that is not a
plain ``ws``/``wss`` URL, each refusal with a short ``reason`` code that callers count.

Where a URL may point is the address guard's job (``network/address_guard.py``).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import idna

from nostr_assets.lib.failures import UrlRefusal

MAX_URL_LENGTH = 512
DEFAULT_PORTS = {"ws": 80, "wss": 443}

# Whitespace or control characters inside a URL: never part of a real relay address, and a
# classic way to smuggle a second host past a naive parser. Unicode whitespace (\s: U+00A0,
# U+3000 ...) too, which str.strip() would take off the end of a path ending in one, so that
# a canonical URL would change when normalised again.
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\\]|\s")
# Characters a DNS label may carry once IDNA has turned it into ASCII. Underscore is allowed
# because some relays are published under names such as ``_relay.example.com``.
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
# A last label that is a number (decimal, hex or octal form): browsers and inet_aton read such
# hosts as IPv4 ("127.1", "0x7f.1"), so anything of this shape must be a plain dotted quad.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class InvalidRelayUrl(ValueError):
    """A relay URL refused by ``normalize_relay_url``; ``reason`` is a short stable code."""

    def __init__(self, reason: UrlRefusal, url: object = None) -> None:
        super().__init__(f"{reason}: {url!r}" if url is not None else reason)
        self.reason = reason
        self.url = url


def _normalize_host(raw_host: str, url: str) -> tuple[str, bool]:
    """Return the host as written in a canonical URL, and whether it is an IPv6 literal."""
    if raw_host.startswith("["):
        if not raw_host.endswith("]"):
            raise InvalidRelayUrl(UrlRefusal.BAD_HOST, url)
        literal = raw_host[1:-1]
        if "%" in literal:  # a zone id only means something on the crawler's own machine
            raise InvalidRelayUrl(UrlRefusal.BAD_HOST, url)
        try:
            return f"[{ipaddress.IPv6Address(literal).compressed}]", True
        except ValueError:
            raise InvalidRelayUrl(UrlRefusal.BAD_HOST, url) from None
    # Every check below runs on the ASCII form, so that each spelling of a host gets one
    # verdict: "2。1301706433" (an ideographic full stop) and a full-width "127.1" are
    # the numeric hosts "2.1301706433" and "127.1" once mapped, and must be refused like them.
    host = raw_host.lower() if raw_host.isascii() else _ascii_host(raw_host, url)
    # "relay.example.com." names the same host as "relay.example.com".
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise InvalidRelayUrl(UrlRefusal.NO_HOST, url)
    if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        try:
            return str(ipaddress.IPv4Address(host)), False
        except ValueError:
            raise InvalidRelayUrl(UrlRefusal.BAD_HOST, url) from None
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise InvalidRelayUrl(UrlRefusal.BAD_HOST, url)
    return host, False


def _ascii_host(host: str, url: str) -> str:
    """The ASCII spelling of a host with non-ASCII characters, as a browser's URL parser maps it.

    UTS 46 maps case, full-width forms and the ideographic full stop, then each label still not
    ASCII becomes a punycode A-label. Labels are not put through IDNA2008's stricter rules: those
    refuse the underscores real DNS allows ("_relay") and emoji, whose A-labels ("xn--ls8h")
    this module takes as written, so refusing their Unicode spelling would only give one host
    two verdicts. Whether such a name exists is for DNS to say.
    """
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
        return ".".join(
            label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
            for label in mapped.split(".")
        )
    except (idna.IDNAError, UnicodeError):
        raise InvalidRelayUrl(UrlRefusal.BAD_HOST, url) from None


def normalize_relay_url(url: str) -> str:
    """Return the canonical spelling of a ``ws``/``wss`` relay URL or raise ``InvalidRelayUrl``.

    Scheme and host are lowercased, the host is IDNA-encoded, default ports (80 for ws, 443 for
    wss) and trailing slashes are dropped, and so are the fragment and the query. The query is
    dropped because relay lists use it for per-user tokens and tracking tags (``?ref=...``) that
    should neither be stored nor split one relay into many catalogue rows; a relay that needs a
    query to work is rare enough to lose.
    """
    if not isinstance(url, str):
        raise InvalidRelayUrl(UrlRefusal.NOT_A_STRING, url)
    text = url.strip()
    if not text:
        raise InvalidRelayUrl(UrlRefusal.EMPTY, url)
    if len(text) > MAX_URL_LENGTH:
        raise InvalidRelayUrl(UrlRefusal.TOO_LONG, text[:64] + "...")
    if _BAD_CHARS.search(text):
        raise InvalidRelayUrl(UrlRefusal.BAD_CHARACTERS, text)
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise InvalidRelayUrl(UrlRefusal.BAD_HOST, text) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidRelayUrl(UrlRefusal.BAD_SCHEME, text)
    netloc = parts.netloc
    if "@" in netloc:
        raise InvalidRelayUrl(UrlRefusal.HAS_CREDENTIALS, text)
    if not netloc:
        raise InvalidRelayUrl(UrlRefusal.NO_HOST, text)

    # Split host and port by hand: urlsplit accepts "host:" and lowercases without checking.
    if netloc.startswith("["):
        close = netloc.find("]")
        raw_host, rest = netloc[: close + 1], netloc[close + 1 :]
        if close < 0 or (rest and not rest.startswith(":")):
            raise InvalidRelayUrl(UrlRefusal.BAD_HOST, text)
        port_text = rest[1:] if rest else None
    else:
        raw_host, sep, port_text = netloc.partition(":")
        if not sep:
            port_text = None
    if not raw_host:
        raise InvalidRelayUrl(UrlRefusal.NO_HOST, text)
    host, _ = _normalize_host(raw_host, text)

    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not port_text.isascii():
            raise InvalidRelayUrl(UrlRefusal.BAD_PORT, text)
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise InvalidRelayUrl(UrlRefusal.BAD_PORT, text)
        if port == DEFAULT_PORTS[scheme]:
            port = None

    path = parts.path.rstrip("/")
    result = f"{scheme}://{host}" + (f":{port}" if port is not None else "") + path
    if len(result) > MAX_URL_LENGTH:  # IDNA can lengthen a host
        raise InvalidRelayUrl(UrlRefusal.TOO_LONG, result[:64] + "...")
    return result


def host_and_port(url: str) -> tuple[str, int, bool]:
    """Return ``(host, port, tls)`` of a relay URL; IPv6 hosts come without brackets."""
    canonical = normalize_relay_url(url)
    parts = urlsplit(canonical)
    tls = parts.scheme == "wss"
    host = parts.hostname or ""
    return host, parts.port or DEFAULT_PORTS[parts.scheme], tls
