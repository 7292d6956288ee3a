"""Properties of relay URL normalisation, for any input (hypothesis).

Protects: normalising is idempotent (a canonical URL is its own canonical form, or the catalogue
holds one relay twice); nothing but ``InvalidRelayUrl`` ever escapes; and every spelling of one
IP address (decimal, hex, octal and shortened IPv4, compressed, expanded and mapped IPv6, upper
case, trailing dot, default port written or not) either is refused or reaches the address
guard as that address, so that no spelling turns a refused address into a DNS name or a
public one. The guard is asked through ``classify_address``: no DNS.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nostr_assets.lib.network.address_guard import classify_address
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, host_and_port, normalize_relay_url

TESTDATA = Path(__file__).resolve().parents[4] / "shared" / "testdata"
RELAY_LIST = TESTDATA / "relays" / "amethyst-relayDB.txt"

# Characters that have tripped URL parsers: delimiters, Unicode dots and digits that UTS 46
# maps to ASCII, whitespace str.strip() knows and the URL regex may not, ignorable and
# combining characters, an emoji, a lone surrogate.
_TRICKY = (
    ":/?#@[]%\\.-_~ \t\n\x00\x7f"
    "\u3002\uff0e\uff61"  # ideographic, full-width and half-width ideographic full stops
    "\uff11\uff12\uff17\uff10\uff58\uff21"  # full-width 1 2 7 0 x A
    "\u00a0\u2028\u3000\x85\x1c"  # whitespace outside ASCII
    "\u00ad\u200b\u200d\u0301ß\u0130İ🌐\ud800"
)
_chars = st.one_of(st.sampled_from(_TRICKY), st.characters(codec="utf-8"), st.characters())
_fragment = st.text(_chars, max_size=12)
_label = st.one_of(
    st.from_regex(r"[a-z0-9_][a-z0-9_-]{0,8}", fullmatch=True),
    st.sampled_from(["relay", "nostr", "bücher", "xn--bcher-kva", "RELAY", "127", "0x7f", "1"]),
    _fragment,
)
_host = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
    _fragment,
)
_port = st.one_of(
    st.none(),
    st.integers(-1, 70_000).map(str),
    st.sampled_from(["", "443", "0443", "80", "١٢٣", "+1"]),
    _fragment,
)
_scheme = st.sampled_from(["wss", "ws", "WSS", "Ws", "https", "", "wss:"])


@st.composite
def relay_urls(draw) -> str:
    """URL-shaped strings, most of them close to a relay URL, some of them broken."""
    port = draw(_port)
    url = (
        draw(_scheme)
        + draw(st.sampled_from(["://", ":/", "://user@", ""]))
        + draw(_host)
        + ("" if port is None else ":" + port)
        + draw(st.sampled_from(["", "/", "//", "/inbox", "/a/b/", "/ü/"]))
        + draw(st.sampled_from(["", "?token=x", "#frag", "?"]))
    )
    if draw(st.booleans()):  # one stray character anywhere
        at = draw(st.integers(0, len(url)))
        url = url[:at] + draw(_chars) + url[at:]
    return draw(st.sampled_from(["", " ", "\u3000"])) + url + draw(st.sampled_from(["", " "]))


def _normalized(url: object) -> str | None:
    """The canonical URL, None when refused; any exception but InvalidRelayUrl fails the test."""
    try:
        return normalize_relay_url(url)  # type: ignore[arg-type]
    except InvalidRelayUrl as error:
        assert isinstance(error.reason, str) and error.reason
        return None


def _assert_canonical(url: str | None) -> None:
    canonical = _normalized(url)
    if canonical is not None:
        assert normalize_relay_url(canonical) == canonical
        assert canonical == canonical.strip()
        host, port, tls = host_and_port(canonical)
        assert host and host.isascii() and host == host.lower()
        assert 1 <= port <= 65535 and tls == canonical.startswith("wss://")


@given(relay_urls())
@example("wss://2。1301706433")  # issue 10: came out as "wss://2.1301706433", refused next time
@example("wss://\uff11\uff12\uff17.\uff11")  # full-width "127.1"
@example("wss://relay.example.com/a\u00a0/")
@example("wss://bücher.example。")
def test_normalising_is_idempotent_and_refuses_with_a_reason(url: str) -> None:
    _assert_canonical(url)


@given(st.one_of(st.text(), st.text(_chars), st.binary(), st.none(), st.integers()))
def test_arbitrary_input_only_ever_raises_invalid_relay_url(value: object) -> None:
    _assert_canonical(value)  # type: ignore[arg-type]


def _relay_list() -> list[str]:
    if not RELAY_LIST.is_file():
        return []
    return [line.strip() for line in RELAY_LIST.read_text().splitlines() if line.strip()]


@pytest.mark.skipif(not RELAY_LIST.is_file(), reason="shared/testdata is absent")
@given(st.data())
def test_real_relay_urls_mutated_stay_idempotent(data) -> None:
    url = data.draw(st.sampled_from(_relay_list()))
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(url)))
        cut = data.draw(st.integers(0, 2))
        url = url[:at] + data.draw(st.text(_chars, max_size=2)) + url[at + cut :]
    _assert_canonical(url)


def test_every_real_relay_url_is_canonical_after_one_pass() -> None:
    for url in _relay_list():
        _assert_canonical(url)


# ---- one address, many spellings ---------------------------------------------------------

_FULL_WIDTH = str.maketrans("0123456789.", "".join(map(chr, range(0xFF10, 0xFF1A))) + "\u3002")


def _ipv4_spellings(address: ipaddress.IPv4Address) -> list[str]:
    """Hosts that some parser (inet_aton, a browser, UTS 46) reads as ``address``."""
    octets = [int(o) for o in str(address).split(".")]
    n = int(address)
    return [
        str(address),
        str(address) + ".",
        str(n),  # one decimal number
        hex(n),
        hex(n).upper().replace("X", "x"),
        "0" + oct(n)[2:],  # one octal number
        ".".join(hex(o) for o in octets),
        ".".join("0" + oct(o)[2:] for o in octets),  # dotted octal
        ".".join(f"{o:03d}" for o in octets),  # zero-padded, octal to inet_aton
        f"{octets[0]}.{n & 0xFFFFFF}",  # "127.1" style
        f"{octets[0]}.{octets[1]}.{n & 0xFFFF}",
        str(address).translate(_FULL_WIDTH),
        str(address).replace(".", "。"),
    ]


def _ipv6_spellings(address: ipaddress.IPv6Address) -> list[str]:
    spellings = [address.compressed, address.exploded, address.exploded.upper()]
    spellings.append(":".join(group.lstrip("0") or "0" for group in address.exploded.split(":")))
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    head = address.exploded.rsplit(":", 2)[0]
    spellings.append(f"{head}:{low}")  # the last 32 bits written as dotted IPv4
    return [f"[{s}]" for s in spellings]


def _wrapped(address: ipaddress.IPv4Address) -> list[str]:
    """IPv6 literals that carry ``address``; the guard must judge them as ``address``."""
    n = int(address)
    return [
        f"[::ffff:{address}]",
        f"[::FFFF:{n >> 16:X}:{n & 0xFFFF:X}]",
        f"[0:0:0:0:0:ffff:{address}]",
        f"[{ipaddress.IPv6Address((0x64FF9B << 96) | n)}]",  # NAT64
        f"[{ipaddress.IPv6Address((0xFFFF << 48) | n)}]",  # SIIT
        f"[{ipaddress.IPv6Address((0x2002 << 112) | (n << 80))}]",  # 6to4
    ]


def _urls(host: str, scheme: str) -> list[str]:
    default = 443 if scheme == "wss" else 80
    return [
        f"{scheme}://{host}",
        f"{scheme}://{host}/",
        f"{scheme.upper()}://{host.upper()}:{default}/",
        f"{scheme}://{host}:{default}",
        f"{scheme}://{host}:7447",
    ]


def _verdict(url: str) -> tuple[str, str | None] | None:
    """None when the normaliser refuses; else the canonical URL and the guard's verdict on its
    host, which must be an IP literal (a numeric spelling must never go to DNS as a name)."""
    canonical = _normalized(url)
    if canonical is None:
        return None
    host = host_and_port(canonical)[0]
    ipaddress.ip_address(host)  # raises ValueError (fails the test) for a DNS name
    return canonical, classify_address(host)


_special_ipv4 = st.sampled_from(
    ["127.0.0.1", "10.1.2.3", "169.254.169.254", "0.0.0.0", "100.64.0.1", "192.168.1.1", "8.8.8.8"]
).map(ipaddress.IPv4Address)


@given(st.one_of(_special_ipv4, st.ip_addresses(v=4)), st.sampled_from(["ws", "wss"]))
def test_every_spelling_of_an_ipv4_address_gets_its_verdict(address, scheme) -> None:
    verdict = classify_address(str(address))
    for host in _ipv4_spellings(address):
        for url in _urls(host, scheme):
            seen = _verdict(url)
            if seen is not None:
                canonical, guard = seen
                # One relay, one spelling: the port stays only when it is not the default.
                assert canonical == f"{scheme}://{address}" + (":7447" if ":7447" in url else "")
                assert guard == verdict, url
    for host in _wrapped(address):
        for url in _urls(host, scheme):
            seen = _verdict(url)
            assert seen is not None, url  # IPv6 literals are accepted as written
            assert seen[1] == verdict, url


@given(st.ip_addresses(v=6), st.sampled_from(["ws", "wss"]))
def test_every_spelling_of_an_ipv6_address_gets_its_verdict(address, scheme) -> None:
    verdict = classify_address(str(address))
    for host in _ipv6_spellings(address):
        for url in _urls(host, scheme):
            seen = _verdict(url)
            assert seen is not None, url
            port = ":7447" if ":7447" in url else ""
            assert seen == (f"{scheme}://[{address.compressed}]{port}", verdict), url
    assert _normalized(f"{scheme}://[{address}%eth0]") is None  # a zone id is refused


@given(st.text(max_size=60))
def test_classify_address_never_raises(text: str) -> None:
    assert classify_address(text) in {
        None,
        "not_an_address",
        "unspecified",
        "loopback",
        "link_local",
        "multicast",
        "private",
        "reserved",
    }
