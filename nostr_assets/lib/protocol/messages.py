"""NIP-01 message codec: every client-to-relay and relay-to-client message.

Decoding never raises anything but ``BadFrame`` (with a reason code) for garbage, so a relay
that sends rubbish is counted, not fatal. EVENT payloads stay as raw JSON bytes here: the
event itself is parsed by ``event.decode_event`` so that its refusal reason is precise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from nostr_assets.lib.failures import FrameRefusal
from nostr_assets.lib.protocol.event import MAX_CREATED_AT, MAX_KIND, Event

BAD_FRAME_REASONS = ("not_json", "not_an_array", "unknown_type", "bad_shape", "too_large")

# NIP-01 machine-readable prefixes of CLOSED and OK messages.
CLOSED_PREFIXES = (
    "auth-required",
    "rate-limited",
    "restricted",
    "error",
    "duplicate",
    "pow",
    "blocked",
    "invalid",
    "unsupported",
    "mute",
)


class BadFrame(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# ---- relay to client -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventMessage:
    subscription_id: str
    event_json: bytes  # the raw event object, parsed later by event.decode_event


@dataclass(frozen=True, slots=True)
class EoseMessage:
    subscription_id: str


@dataclass(frozen=True, slots=True)
class ClosedMessage:
    subscription_id: str
    message: str

    @property
    def prefix(self) -> str:
        return message_prefix(self.message)


@dataclass(frozen=True, slots=True)
class NoticeMessage:
    message: str


@dataclass(frozen=True, slots=True)
class OkMessage:
    event_id: str
    accepted: bool
    message: str

    @property
    def prefix(self) -> str:
        return message_prefix(self.message)


@dataclass(frozen=True, slots=True)
class AuthMessage:
    challenge: str


@dataclass(frozen=True, slots=True)
class CountMessage:
    subscription_id: str
    count: int


@dataclass(frozen=True, slots=True)
class NegMessage:
    """NIP-77: a negentropy reconciliation message (hex), the relay's answer to NEG-OPEN."""

    subscription_id: str
    message: str


@dataclass(frozen=True, slots=True)
class NegErrorMessage:
    """NIP-77: the relay will not reconcile this subscription (``blocked:``, ``closed:`` ...)."""

    subscription_id: str
    reason: str


RelayMessage = (
    EventMessage
    | EoseMessage
    | ClosedMessage
    | NoticeMessage
    | OkMessage
    | AuthMessage
    | CountMessage
    | NegMessage
    | NegErrorMessage
)


def message_prefix(message: str) -> str:
    """The machine-readable prefix of a CLOSED/OK message ('' when there is none)."""
    head, colon, _ = message.partition(":")
    head = head.strip().lower()
    return head if colon and head in CLOSED_PREFIXES else ""


_frame_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_str_decoder = msgspec.json.Decoder(str)
_bool_decoder = msgspec.json.Decoder(bool)
_count_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()

# What a decoding failure means, said once for every part of a frame. JSON text is UTF-8 (RFC
# 8259, section 8.1), so invalid UTF-8 inside a string makes the frame not JSON at all, like
# absurd nesting: `not_json`. Valid JSON of the wrong type is `bad_shape`. msgspec 0.18-0.22
# raised UnicodeDecodeError for invalid UTF-8 and 0.23 raises DecodeError; both land here, and
# so does the UnicodeEncodeError of a text frame holding a lone surrogate, which has no UTF-8.
_NOT_JSON_ERRORS = (msgspec.DecodeError, UnicodeError, RecursionError)


def _decode(decoder: msgspec.json.Decoder, raw: msgspec.Raw | bytes | str, detail: str) -> Any:
    """``raw`` decoded, or ``BadFrame``: `bad_shape` (with ``detail``) or `not_json`."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:  # a subclass of DecodeError: caught first
        raise BadFrame(FrameRefusal.BAD_SHAPE, detail) from None
    except _NOT_JSON_ERRORS:
        raise BadFrame(FrameRefusal.NOT_JSON) from None


def _split(frame: bytes | str, max_bytes: int | None) -> list[msgspec.Raw]:
    if max_bytes is not None and len(frame) > max_bytes:
        raise BadFrame(FrameRefusal.TOO_LARGE, f"{len(frame)} bytes")
    try:
        parts = _frame_decoder.decode(frame)
    except msgspec.ValidationError:
        raise BadFrame(FrameRefusal.NOT_AN_ARRAY) from None
    except _NOT_JSON_ERRORS:
        raise BadFrame(FrameRefusal.NOT_JSON) from None
    if not parts:
        raise BadFrame(FrameRefusal.BAD_SHAPE, "empty array")
    return parts


def _text(raw: msgspec.Raw) -> str:
    return _decode(_str_decoder, raw, "expected a string")


def decode_relay_message(frame: bytes | str, max_bytes: int | None = None) -> RelayMessage:
    """Decode one relay-to-client frame, or raise ``BadFrame``."""
    parts = _split(frame, max_bytes)
    kind = _text(parts[0])
    n = len(parts)
    if kind == "EVENT" and n == 3:
        return EventMessage(_text(parts[1]), bytes(parts[2]))
    if kind == "EOSE" and n == 2:
        return EoseMessage(_text(parts[1]))
    if kind == "CLOSED" and n in (2, 3):
        return ClosedMessage(_text(parts[1]), _text(parts[2]) if n == 3 else "")
    if kind == "NOTICE" and n == 2:
        return NoticeMessage(_text(parts[1]))
    if kind == "OK" and n in (3, 4):
        accepted = _decode(_bool_decoder, parts[2], "OK flag is not a boolean")
        return OkMessage(_text(parts[1]), accepted, _text(parts[3]) if n == 4 else "")
    if kind == "AUTH" and n == 2:
        return AuthMessage(_text(parts[1]))
    if kind == "COUNT" and n == 3:
        count = _decode(_count_decoder, parts[2], "COUNT without an object").get("count")
        if not isinstance(count, int) or isinstance(count, bool):
            raise BadFrame(FrameRefusal.BAD_SHAPE, "COUNT without an integer count")
        return CountMessage(_text(parts[1]), count)
    if kind == "NEG-MSG" and n == 3:
        return NegMessage(_text(parts[1]), _text(parts[2]))
    if kind == "NEG-ERR" and n >= 3:  # a 4th element may say how many records are allowed
        return NegErrorMessage(_text(parts[1]), _text(parts[2]))
    if kind in ("EVENT", "EOSE", "CLOSED", "NOTICE", "OK", "AUTH", "COUNT", "NEG-MSG"):
        raise BadFrame(FrameRefusal.BAD_SHAPE, f"{kind} with {n} elements")
    raise BadFrame(FrameRefusal.UNKNOWN_TYPE, kind[:32])


# The whole `["EVENT", sub, {...}]` frame in one pass, straight into ``Event``; the bounds and
# hex checks msgspec would do through Python's `re` anyway (3 us a frame) are done below instead.
_event_frame = msgspec.json.Decoder(tuple[Literal["EVENT"], str, Event])
# id + pubkey + sig, once their lengths (64, 64, 128) are known to be right.
_HEX_256 = re.compile(r"[0-9a-f]{256}")


def decode_event_frame(frame: bytes | str) -> tuple[str, Event] | None:
    """The fast path for the frame relays send most: ``(subscription id, event)`` when the
    frame is a well-formed EVENT whose event passes every structural check of
    ``event.decode_event``; None for anything else, which then goes through
    ``decode_relay_message`` and ``decode_event`` so that a refusal gets its exact reason.

    An event accepted here is the event ``decode_event`` gives for the same text: a key
    written twice means its last value on both (``decode_event`` says why)."""
    try:
        _, subscription_id, event = _event_frame.decode(frame)
    except (msgspec.MsgspecError, *_NOT_JSON_ERRORS):
        return None
    if (
        0 <= event.created_at <= MAX_CREATED_AT
        and 0 <= event.kind <= MAX_KIND
        and len(event.id) == 64
        and len(event.pubkey) == 64
        and len(event.sig) == 128
        and _HEX_256.fullmatch(event.id + event.pubkey + event.sig)
    ):
        return subscription_id, event
    return None


# ---- client to relay -------------------------------------------------------------------------


def encode_req(subscription_id: str, *filters: dict[str, Any]) -> bytes:
    return _encoder.encode(["REQ", subscription_id, *filters])


def encode_count(subscription_id: str, *filters: dict[str, Any]) -> bytes:
    return _encoder.encode(["COUNT", subscription_id, *filters])


def encode_close(subscription_id: str) -> bytes:
    return _encoder.encode(["CLOSE", subscription_id])


# NIP-77's initial message for a client holding nothing: protocol version 1 (0x61), then one
# range up to infinity (timestamp 0, no id prefix) in IdList mode (2) with no ids. A relay that
# speaks negentropy answers with its own view of the filter's events as NEG-MSG.
EMPTY_NEGENTROPY_MESSAGE = "6100000200"


def encode_neg_open(subscription_id: str, flt: dict[str, Any], message: str) -> bytes:
    return _encoder.encode(["NEG-OPEN", subscription_id, flt, message])


def encode_neg_close(subscription_id: str) -> bytes:
    return _encoder.encode(["NEG-CLOSE", subscription_id])
