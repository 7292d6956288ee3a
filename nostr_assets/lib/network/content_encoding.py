"""Undo an HTTP body's Content-Encoding without letting the decoded body grow past a cap.

A few hundred compressed bytes can inflate to gigabytes (a brotli answer of 822 bytes took the
process to 1.07 GB), so a cap checked only after each decoded chunk does not protect memory:
every decoder here is told how much output it may produce and stops there. A body that would
decode past the cap is refused as ``too_large`` after at most ``max_bytes`` plus one decoder step
(one byte for zlib, 32 KiB for brotli) has been produced.

Pure: no I/O. Codings a bounded decoder is not available for are refused rather than decoded
unbounded; the NIP-11 fetch asks for ``identity``, so a server that compresses anyway is
misbehaving and losing its document costs little.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable
from typing import Any

from nostr_assets.lib.failures import Nip11Failure

# Failure codes, in the vocabulary of Nip11Result.error (lib/failures.py).
TOO_LARGE = Nip11Failure.TOO_LARGE  # the body, raw or decoded, is larger than the cap
BAD_ENCODING = Nip11Failure.BAD_ENCODING  # not valid data of the coding it declares
UNSUPPORTED_ENCODING = Nip11Failure.UNSUPPORTED_ENCODING  # a coding not decodable within a cap

# Brotli is an optional dependency (it arrives with aiohttp's speedups), and only a recent one
# (1.2.1 here) can bound its output: process(..., output_buffer_limit=). Without such a brotli,
# `br` is refused, never decoded unbounded.
_brotli: Any = None
try:
    _brotli = importlib.import_module("brotli")  # untyped: Any either way
    _brotli.Decompressor().process(b"", output_buffer_limit=1)
except (ImportError, TypeError):
    _brotli = None

# Brotli grows its output buffer block by block (32 KiB first, then doubling): a limit below the
# first block yields exactly one block per call, so the overshoot past the cap stays one block.
_BROTLI_STEP = 16_384

# A zlib window size that also accepts a zlib header where gzip was declared (32 + 15): some
# servers mislabel one as the other, and both are checked by their own trailer.
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS


class BodyRefused(Exception):
    """The body cannot be decoded within the cap; ``code`` is one of the constants above."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _inflate(data: bytes, wbits: int, room: int) -> tuple[bytes, bytes]:
    """One zlib stream of ``data``: (its output, the bytes after its end), at most ``room``."""
    decompressor = zlib.decompressobj(wbits)
    try:
        # max_length stops inflating there; one byte past ``room`` tells a body that fits
        # exactly from one that does not. (flush() is never called: it has no such bound.)
        out = decompressor.decompress(data, room + 1)
    except zlib.error:
        raise BodyRefused(BAD_ENCODING) from None
    if len(out) > room:
        raise BodyRefused(TOO_LARGE)
    if not decompressor.eof:  # all input consumed and the stream not ended: truncated
        raise BodyRefused(BAD_ENCODING)
    return out, decompressor.unused_data


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    out = bytearray()
    rest = data
    while True:  # a gzip body may hold several members, one after the other (RFC 1952)
        part, rest = _inflate(rest, _GZIP_OR_ZLIB, max_bytes - len(out))
        out += part
        if not rest:
            return bytes(out)


def _deflate(data: bytes, max_bytes: int) -> bytes:
    # "deflate" means a zlib stream (RFC 9110), but some servers send raw deflate: try both.
    try:
        out, rest = _inflate(data, zlib.MAX_WBITS, max_bytes)
    except BodyRefused as exc:
        if exc.code != BAD_ENCODING:
            raise
        out, rest = _inflate(data, -zlib.MAX_WBITS, max_bytes)
    if rest:
        raise BodyRefused(BAD_ENCODING)
    return out


def _unbrotli(data: bytes, max_bytes: int) -> bytes:
    decompressor = _brotli.Decompressor()
    out = bytearray()
    try:
        out += decompressor.process(data, output_buffer_limit=_BROTLI_STEP)
        # The rest comes out by calls with empty input, one step each. (can_accept_more_data()
        # does not say whether output is pending: it is true once all the input is taken in.)
        # No output and no end means the decoder waits for input there is none of: truncated.
        while len(out) <= max_bytes and not decompressor.is_finished():
            step = decompressor.process(b"", output_buffer_limit=_BROTLI_STEP)
            if not step:
                break
            out += step
    except _brotli.error:
        raise BodyRefused(BAD_ENCODING) from None
    if len(out) > max_bytes:
        raise BodyRefused(TOO_LARGE)
    if not decompressor.is_finished():
        raise BodyRefused(BAD_ENCODING)
    return bytes(out)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,  # RFC 9110 asks recipients to treat it as gzip
    "deflate": _deflate,
}
if _brotli is not None:
    _DECODERS["br"] = _unbrotli

# What decode_body can undo; anything else (zstd, compress, unknown names) is refused.
SUPPORTED_CODINGS = frozenset(_DECODERS) | {"identity"}


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """``body`` with every coding of ``content_encoding`` undone, at most ``max_bytes`` long.

    Codings are listed in the order they were applied, so they are undone last first
    (``gzip, gzip`` is gzip inside gzip). Raises ``BodyRefused`` with ``TOO_LARGE`` when the body
    or any decoded layer is longer than ``max_bytes``, ``BAD_ENCODING`` for corrupt or truncated
    data and ``UNSUPPORTED_ENCODING`` for a coding outside ``SUPPORTED_CODINGS``; no decoder
    ever produces more than ``max_bytes`` plus one step of output.
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    # Refuse before decoding anything: the outer layers would be decoded for nothing.
    if any(c not in _DECODERS for c in codings):
        raise BodyRefused(UNSUPPORTED_ENCODING)
    if len(body) > max_bytes:
        raise BodyRefused(TOO_LARGE)
    for coding in reversed(codings):
        body = _DECODERS[coding](body, max_bytes)
    return body
