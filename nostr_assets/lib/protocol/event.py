"""Nostr events (NIP-01): strict parsing, canonical serialization, id and BIP-340 checks.

Every malformed input becomes an ``InvalidEvent`` carrying one short reason code from
``REJECT_REASONS``; callers count those codes, so nothing here lets another exception escape
for bad data.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

import msgspec
from coincurve import PublicKeyXOnly

from nostr_assets.lib.failures import EventRefusal

# Why each event can be refused (lib/failures.py): stable strings, metadata keys and counts.
REJECT_REASONS = tuple(r for r in EventRefusal if r is not EventRefusal.OVER_BUDGET)

MAX_KIND = 65535
# created_at must fit DuckDB's BIGINT; events far in the future are still valid events.
MAX_CREATED_AT = 2**63 - 1

_HEX = re.compile(r"[0-9a-f]*")
_KIND_RANGE = re.compile(r"`int` [<>]=")


class InvalidEvent(ValueError):
    """An event refused for one reason of ``REJECT_REASONS``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Event(msgspec.Struct, frozen=True, gc=False):
    """A structurally valid event: types and hex checked, id and signature not yet."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: list[list[str]]
    content: str
    sig: str


# A decoding type with bounds, so that msgspec rejects out-of-range numbers in C.
class _WireEvent(msgspec.Struct, gc=False):
    id: str
    pubkey: str
    created_at: Annotated[int, msgspec.Meta(ge=0, le=MAX_CREATED_AT)]
    kind: Annotated[int, msgspec.Meta(ge=0, le=MAX_KIND)]
    tags: list[list[str]]
    content: str
    sig: str


_wire_decoder = msgspec.json.Decoder(_WireEvent)
_encoder = msgspec.json.Encoder()

_FIELD_REASONS = {
    "id": EventRefusal.BAD_HEX,
    "pubkey": EventRefusal.BAD_HEX,
    "sig": EventRefusal.BAD_HEX,
    "created_at": EventRefusal.BAD_CREATED_AT,
    "tags": EventRefusal.BAD_TAGS,
    "content": EventRefusal.BAD_CONTENT,
}


def _reason_for(error: msgspec.ValidationError) -> str:
    message = str(error)
    if message.startswith("Object missing required field"):
        return EventRefusal.MISSING_FIELD
    if "at `$`" in message or ("`$`" not in message and "Expected `object`" in message):
        return EventRefusal.NOT_AN_OBJECT
    match = re.search(r"at `\$\.(\w+)", message)
    field = match.group(1) if match else ""
    if field == "kind":
        return (
            EventRefusal.KIND_OUT_OF_RANGE if _KIND_RANGE.search(message) else EventRefusal.BAD_KIND
        )
    return _FIELD_REASONS.get(field, EventRefusal.NOT_AN_OBJECT)


def _check_hex(value: str, length: int) -> None:
    if len(value) != length:
        raise InvalidEvent(EventRefusal.BAD_LENGTH)
    if not _HEX.fullmatch(value):
        raise InvalidEvent(EventRefusal.BAD_HEX)


def _finish(wire: _WireEvent) -> Event:
    _check_hex(wire.id, 64)
    _check_hex(wire.pubkey, 64)
    _check_hex(wire.sig, 128)
    return Event(
        wire.id, wire.pubkey, wire.created_at, wire.kind, wire.tags, wire.content, wire.sig
    )


def decode_event(raw: bytes | str) -> Event:
    """Parse one event's JSON text strictly, or raise ``InvalidEvent``.

    A key written twice means its last value, as JSON.parse reads it (ECMA-262) and as
    ``messages.decode_event_frame`` reads it, so that one event text gets one verdict on either
    path. The id and signature commit to the values that count, so the earlier ones are noise
    whichever reading a client makes; and refusing a repeated key would need the fast path to
    scan every frame for it (one ``bytes.count`` over the frames of bench_copy_path costs 15%
    of their decode, a search for the seven key names 150%).
    """
    try:
        return _finish(_wire_decoder.decode(raw))
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        # Typed decoding checks every occurrence of a key, so `"kind":70000,"kind":1` fails
        # there; it and every other refusal are judged again on the plain JSON value, whose
        # objects keep the last occurrence.
        return event_from_obj(_json_value(raw))


_any_decoder = msgspec.json.Decoder()


def _json_value(raw: bytes | str) -> Any:
    """The JSON value of ``raw``, or ``InvalidEvent(EventRefusal.NOT_JSON)``."""
    try:
        return _any_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        # msgspec refuses lone surrogates, escaped ("\ud800") or in a str (UnicodeEncodeError),
        # and numbers past a double (1e400) outright; the standard library accepts them, so the
        # event can be refused for the precise reason. Invalid UTF-8 inside a string
        # (DecodeError from msgspec 0.23, UnicodeDecodeError before) and absurd nesting
        # (RecursionError) fail json.loads too and end as not_json.
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidEvent(EventRefusal.NOT_JSON) from None


def event_from_obj(obj: Any) -> Event:
    """Validate an already-parsed JSON object as an event, or raise ``InvalidEvent``."""
    if not isinstance(obj, dict):
        raise InvalidEvent(EventRefusal.NOT_AN_OBJECT)
    try:
        wire = msgspec.convert(obj, _WireEvent, strict=True)
    except msgspec.ValidationError as error:
        raise InvalidEvent(_reason_for(error), str(error)) from None
    event = _finish(wire)
    _check_utf8(event)
    return event


def _check_utf8(event: Event) -> None:
    try:
        event.content.encode()
        for tag in event.tags:
            for value in tag:
                value.encode()
    except UnicodeEncodeError:
        raise InvalidEvent(EventRefusal.LONE_SURROGATE) from None


def canonical_serialization(event: Event) -> bytes:
    """The NIP-01 bytes whose sha256 is the event id.

    msgspec's compact output escapes exactly what ``json.dumps(..., ensure_ascii=False)`` does
    (checked against the NIP-01 serialization cases in the tests).
    """
    try:
        return _encoder.encode(
            (0, event.pubkey, event.created_at, event.kind, event.tags, event.content)
        )
    except UnicodeEncodeError:
        raise InvalidEvent(EventRefusal.LONE_SURROGATE) from None


def encode_event(event: Event) -> bytes:
    """Compact JSON of the event with keys in a fixed order: the same bytes for every copy."""
    return _encoder.encode(event)


def _libsecp256k1_verify():
    """libsecp256k1's schnorrsig_verify and its context, through coincurve's own cffi handle.

    ``PublicKeyXOnly.verify`` wraps the same C call in argument checks that cost about 3 us of
    the 32 per event; the lengths it checks are already guaranteed by ``decode_event``. None
    when coincurve's layout differs: the public API is used then.
    """
    try:
        from coincurve._libsecp256k1 import lib
        from coincurve.context import GLOBAL_CONTEXT
    except ImportError:
        return None, None
    return lib.secp256k1_schnorrsig_verify, GLOBAL_CONTEXT.ctx


_schnorrsig_verify, _secp256k1_context = _libsecp256k1_verify()


class EventVerifier:
    """Checks ids and signatures, caching parsed public keys per author.

    Parsing an x-only key costs about 6 microseconds next to 32 for the verification itself,
    and authors repeat, so the cache pays for itself; it is bounded for hostile inputs.
    """

    def __init__(self, max_cached_keys: int = 200_000) -> None:
        # pubkey hex -> (PublicKeyXOnly, its libsecp256k1 struct), or None when invalid
        self._keys: dict[str, tuple | None] = {}
        self._max_cached_keys = max_cached_keys

    def _public_key(self, pubkey: str) -> tuple | None:
        try:
            key = PublicKeyXOnly(bytes.fromhex(pubkey))
            entry = (key, key.public_key)
        except ValueError:
            entry = None
        if len(self._keys) >= self._max_cached_keys:
            self._keys.clear()
        self._keys[pubkey] = entry
        return entry

    def reject_reason(self, event: Event) -> str | None:
        """None when the event's id and signature are right, else the reason code."""
        try:
            digest = hashlib.sha256(canonical_serialization(event)).digest()
        except InvalidEvent as error:
            return error.reason
        if digest.hex() != event.id:
            return EventRefusal.ID_MISMATCH
        pubkey = event.pubkey
        entry = self._keys[pubkey] if pubkey in self._keys else self._public_key(pubkey)
        if entry is None:
            return EventRefusal.INVALID_PUBKEY
        try:
            sig = bytes.fromhex(event.sig)
            if _schnorrsig_verify is not None and len(sig) == 64:
                valid = _schnorrsig_verify(_secp256k1_context, sig, digest, 32, entry[1])
            else:
                valid = entry[0].verify(sig, digest)
        except ValueError:
            valid = False
        return None if valid else EventRefusal.BAD_SIGNATURE


def sign_event(
    secret_key: bytes,
    created_at: int,
    kind: int,
    tags: list[list[str]],
    content: str,
    aux_rand: bytes | None = None,
) -> Event:
    """An event signed with ``secret_key``: its NIP-01 id and BIP-340 signature.

    ``aux_rand`` is BIP-340's auxiliary randomness: None for fresh randomness.
    """
    from coincurve import PrivateKey

    private = PrivateKey(secret_key)
    pubkey = private.public_key_xonly.format().hex()
    unsigned = Event("0" * 64, pubkey, created_at, kind, tags, content, "0" * 128)
    digest = hashlib.sha256(canonical_serialization(unsigned)).digest()
    sig = private.sign_schnorr(digest, b"" if aux_rand is None else aux_rand)
    return Event(digest.hex(), pubkey, created_at, kind, tags, content, sig.hex())
