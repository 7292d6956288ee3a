"""A monitor's secret key, as people write it: 64 hex characters or a NIP-19 `nsec`.

The key never appears in an error message, a repr or a log line: ``MonitorKey`` prints as its
public key, and a key that does not parse is refused without repeating it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coincurve import PrivateKey

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class InvalidSecretKey(ValueError):
    """The key could not be read; the message says why, never what the key was."""


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_BECH32_GENERATOR):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def _expand_prefix(prefix: str) -> list[int]:
    return [ord(c) >> 5 for c in prefix] + [0] + [ord(c) & 31 for c in prefix]


def bech32_decode(text: str) -> tuple[str, bytes]:
    """(prefix, data) of a BIP-173 bech32 string, as NIP-19 uses it; raises ValueError."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed case")
    text = text.lower()
    prefix, separator, rest = text.rpartition("1")
    if not separator or not prefix or len(rest) < 6:
        raise ValueError("not bech32")
    if any(c not in _BECH32_CHARSET for c in rest):
        raise ValueError("not bech32")
    values = [_BECH32_CHARSET.index(c) for c in rest]
    if _polymod(_expand_prefix(prefix) + values) != 1:
        raise ValueError("bad checksum")
    # 5-bit groups to bytes; the padding bits left over must be zero.
    accumulator, bits, out = 0, 0, bytearray()
    for value in values[:-6]:
        accumulator = accumulator << 5 | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append(accumulator >> bits & 0xFF)
    if bits >= 5 or accumulator & ((1 << bits) - 1):
        raise ValueError("bad padding")
    return prefix, bytes(out)


def bech32_encode(prefix: str, data: bytes) -> str:
    """The BIP-173 bech32 string of ``data`` (NIP-19's npub/nsec)."""
    values, accumulator, bits = [], 0, 0
    for byte in data:
        accumulator = accumulator << 8 | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            values.append(accumulator >> bits & 31)
    if bits:
        values.append(accumulator << (5 - bits) & 31)
    polymod = _polymod(_expand_prefix(prefix) + values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return prefix + "1" + "".join(_BECH32_CHARSET[v] for v in values + checksum)


@dataclass(frozen=True)
class MonitorKey:
    """A secp256k1 secret key and its x-only public key; shown as the public key only."""

    secret: bytes = field(repr=False)
    pubkey: str

    def __str__(self) -> str:
        return f"MonitorKey(pubkey={self.pubkey})"

    __repr__ = __str__

    @property
    def npub(self) -> str:
        return bech32_encode("npub", bytes.fromhex(self.pubkey))


def parse_secret_key(text: str) -> MonitorKey:
    """The key of ``text`` (64 hex characters or `nsec1...`); raises InvalidSecretKey."""
    text = text.strip()
    if text.lower().startswith("nsec1"):
        try:
            prefix, secret = bech32_decode(text)
        except ValueError as error:
            raise InvalidSecretKey(f"not a valid nsec ({error})") from None
        if prefix != "nsec" or len(secret) != 32:
            raise InvalidSecretKey("not a valid nsec (expected 32 bytes)")
    elif len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        secret = bytes.fromhex(text)
    else:
        raise InvalidSecretKey("expected 64 hex characters or an nsec1... key")
    try:
        private = PrivateKey(secret)
    except ValueError:
        raise InvalidSecretKey(
            "not a secp256k1 secret key (zero, or past the curve order)"
        ) from None
    return MonitorKey(secret, private.public_key_xonly.format().hex())
