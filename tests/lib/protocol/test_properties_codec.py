"""Properties of the NIP-01 message codec and the event parser, for any input (hypothesis).

Protects: whatever a relay sends (arbitrary bytes or text, JSON of any shape, real signed events
mangled byte by byte or field by field), decoding gives a message or an event, or a reason
code that is counted, never another exception; the fast EVENT decoder never accepts what the
precise decoders would not, and accepts it as the same event; and an event accepted by the
parser and ``EventVerifier`` is one an independent check accepts too (id recomputed with
hashlib over ``json.dumps``, signature checked with coincurve directly), and only such events.
Real events come from shared/testdata; the properties that need them skip without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from coincurve import PublicKeyXOnly
from hypothesis import example, given
from hypothesis import strategies as st
from json_strategies import json_values as json_value_strategy

from nostr_assets.lib.protocol.event import (
    MAX_CREATED_AT,
    MAX_KIND,
    REJECT_REASONS,
    Event,
    EventVerifier,
    InvalidEvent,
    decode_event,
    encode_event,
    sign_event,
)
from nostr_assets.lib.protocol.messages import (
    BAD_FRAME_REASONS,
    BadFrame,
    EventMessage,
    RelayMessage,
    decode_event_frame,
    decode_relay_message,
)

TESTDATA = Path(__file__).resolve().parents[4] / "shared" / "testdata"
REAL_EVENTS_FILE = TESTDATA / "events" / "real-events.jsonl"
needs_testdata = pytest.mark.skipif(
    not REAL_EVENTS_FILE.is_file(), reason="shared/testdata is absent"
)
REAL_EVENTS: list[bytes] = (
    [line for line in REAL_EVENTS_FILE.read_bytes().splitlines() if line.strip()]
    if REAL_EVENTS_FILE.is_file()
    else []
)
FIELDS = ("id", "pubkey", "created_at", "kind", "tags", "content", "sig")
# Valid events to start from: the real ones, or one of our own when they are absent.
BASE_EVENTS = REAL_EVENTS or [
    encode_event(sign_event(bytes(31) + b"\x05", 1_700_000_000, 1, [["t", "x"]], "gm"))
]
VERIFIER = EventVerifier()


# ---- the independent check -----------------------------------------------------------------


def independently_valid(event: Event) -> bool:
    """NIP-01 and BIP-340 written out again, sharing no code with ``event.py``."""
    serialized = json.dumps(
        [0, event.pubkey, event.created_at, event.kind, event.tags, event.content],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    try:
        digest = hashlib.sha256(serialized.encode("utf-8")).digest()
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8, no id
        return False
    if digest.hex() != event.id:
        return False
    try:
        return PublicKeyXOnly(bytes.fromhex(event.pubkey)).verify(bytes.fromhex(event.sig), digest)
    except ValueError:  # not a point on the curve
        return False


def assert_well_formed(event: Event) -> None:
    """What the parser promises of every event it returns (DESIGN.md, NIP-01 strict types)."""
    assert type(event) is Event
    for value, length in ((event.id, 64), (event.pubkey, 64), (event.sig, 128)):
        assert type(value) is str and len(value) == length
        assert set(value) <= set("0123456789abcdef")
    assert type(event.created_at) is int and 0 <= event.created_at <= MAX_CREATED_AT
    assert type(event.kind) is int and 0 <= event.kind <= MAX_KIND
    assert type(event.tags) is list
    assert all(type(tag) is list and all(type(v) is str for v in tag) for tag in event.tags)
    assert type(event.content) is str


def assert_verdict_is_independent(event: Event) -> None:
    reason = VERIFIER.reject_reason(event)
    assert reason is None or reason in REJECT_REASONS
    assert (reason is None) == independently_valid(event), reason


# ---- the decoders under test ---------------------------------------------------------------


def precise_event(raw: bytes | str) -> Event | str:
    """``decode_event``: the event or its reason; any other exception fails the test."""
    try:
        event = decode_event(raw)
    except InvalidEvent as error:
        assert error.reason in REJECT_REASONS, error.reason
        return error.reason
    assert_well_formed(event)
    return event


def precise_message(frame: bytes | str) -> RelayMessage | str:
    try:
        message = decode_relay_message(frame)
    except BadFrame as error:
        assert error.reason in BAD_FRAME_REASONS, error.reason
        return error.reason
    for field in dataclasses.fields(message):  # each field of the type it declares
        assert type(getattr(message, field.name)).__name__ == field.type, field
    return message


def check_frame(frame: bytes | str) -> Event | str | None:
    """Decode ``frame`` both ways and check they agree; the pipeline's verdict on its event
    (None for a frame that is not an EVENT)."""
    fast = decode_event_frame(frame)
    message = precise_message(frame)
    verdict: Event | str | None = None
    if isinstance(message, EventMessage):
        verdict = precise_event(message.event_json)
    if fast is not None:
        # The fast path decides only what the precise one would decide the same way.
        subscription_id, event = fast
        assert_well_formed(event)
        assert isinstance(message, EventMessage)
        assert (message.subscription_id, verdict) == (subscription_id, event)
    if isinstance(verdict, Event):
        assert_verdict_is_independent(verdict)
    # What the examples exercised (pytest --hypothesis-show-statistics).
    if isinstance(message, str):
        outcome = f"bad frame {message}"
    elif verdict is None:
        outcome = type(message).__name__
    else:
        outcome = "event" if isinstance(verdict, Event) else verdict
    hypothesis.event(f"fast {'event' if fast else 'None'}, precise {outcome}")
    return verdict


# ---- strategies ----------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = json_value_strategy(json_scalars, max_leaves=12)
# Values a field might plausibly hold, right and wrong: near the bounds, hex of every length.
field_values = st.one_of(
    json_values,
    st.integers(-1, 2).map(lambda d: MAX_KIND + d),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 1.0, 1.5, "1", True]),
    st.text("0123456789abcdefABCDEF", max_size=130),
    st.lists(st.lists(st.text(max_size=6), max_size=3), max_size=3),
)
message_types = st.sampled_from(
    ["EVENT", "EOSE", "CLOSED", "NOTICE", "OK", "AUTH", "COUNT", "REQ", "event", ""]
)


def dumps(value: Any, *, compact: bool, ascii_only: bool, sort_keys: bool = False) -> str:
    return json.dumps(
        value,
        separators=(",", ":") if compact else (", ", " : "),
        ensure_ascii=ascii_only,
        sort_keys=sort_keys,
    )


_words = st.text(max_size=12) | st.sampled_from(["auth-required: x", "rate-limited:", ""])
# The elements after the type of each well-shaped relay message.
_SHAPES: dict[str, list[st.SearchStrategy[Any]]] = {
    "EOSE": [_words],
    "CLOSED": [_words, _words],
    "NOTICE": [_words],
    "OK": [_words, st.booleans(), _words],
    "AUTH": [_words],
    "COUNT": [_words, st.fixed_dictionaries({"count": st.integers(-5, 2**70)})],
}


@st.composite
def json_frames(draw) -> bytes | str:
    """Arrays that look like relay messages: well shaped, nearly, or not at all."""
    head = draw(st.one_of(message_types, json_values))
    if isinstance(head, str) and head in _SHAPES and draw(st.booleans()):
        rest = [draw(element) for element in _SHAPES[head]]
        if head in ("CLOSED", "OK") and draw(st.booleans()):
            rest.pop()  # the message text is optional
    else:
        rest = draw(st.lists(st.one_of(json_values, _words), max_size=4))
    text = dumps([head, *rest], compact=draw(st.booleans()), ascii_only=draw(st.booleans()))
    return text if draw(st.booleans()) else text.encode("utf-8", "surrogatepass")


@st.composite
def event_objects(draw) -> dict[str, Any]:
    """Objects with some of the seven fields (each right or wrong) and perhaps extra keys."""
    base: dict[str, Any] = json.loads(draw(st.sampled_from(BASE_EVENTS)))
    if draw(st.integers(0, 3)) == 0:
        base = {key: draw(field_values) for key in FIELDS}
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        base[key] = draw(field_values)
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=2, unique=True)):
        del base[key]
    base.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)))
    return base


@st.composite
def event_frames(draw) -> bytes | str:
    obj = draw(event_objects())
    text = dumps(obj, compact=draw(st.booleans()), ascii_only=draw(st.booleans()))
    sub = dumps(draw(st.text(max_size=6)), compact=True, ascii_only=draw(st.booleans()))
    frame = f'["EVENT",{sub},{text}]'
    return frame if draw(st.booleans()) else frame.encode("utf-8", "surrogatepass")


def with_repeated_key(text: bytes, key: str, value: bytes, before: bool) -> bytes:
    """``text`` with ``key`` written a second time, before or after its first occurrence."""
    token = json.dumps(key).encode() + b":"
    at = text.find(token)
    if at < 0:
        return text[:1] + token + value + b"," + text[1:]
    if before:
        return text[:at] + token + value + b"," + text[at:]
    return text[:-1] + b"," + token + value + b"}"


_JUNK = b'"[]{},:\\0aAf9 .-eE\x00\xff'


@st.composite
def mangled_real_frames(draw) -> bytes:
    """A real signed event's frame with a few bytes changed."""
    buffer = bytearray(b'["EVENT","s",' + draw(st.sampled_from(REAL_EVENTS)) + b"]")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(buffer) - 1))
        byte = draw(st.one_of(st.sampled_from(_JUNK), st.integers(0, 255)))
        operation = draw(st.sampled_from(["replace", "insert", "delete"]))
        if operation == "replace":
            buffer[at] = byte
        elif operation == "insert":
            buffer.insert(at, byte)
        else:
            del buffer[at]
    return bytes(buffer)


# ---- properties ----------------------------------------------------------------------------


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200), json_frames()))
@example(b'["EVENT","s",{"kind":1}]')
@example('["NOTICE","\ud800"]')  # a lone surrogate in a text frame
@example(b"[" * 5000)
def test_any_frame_gives_a_message_or_a_counted_reason(frame: bytes | str) -> None:
    check_frame(frame)


@given(event_frames())
def test_event_frames_get_one_verdict_from_both_decoders(frame: bytes | str) -> None:
    check_frame(frame)


@needs_testdata
@given(mangled_real_frames())
def test_mangled_real_events_get_one_verdict_and_verify_independently(frame: bytes) -> None:
    check_frame(frame)


@given(st.sampled_from(BASE_EVENTS), st.sampled_from(FIELDS), field_values, st.booleans())
@example(BASE_EVENTS[0], "kind", 30023067219, True)  # issue 10: accepted fast, refused precise
@example(BASE_EVENTS[0], "created_at", -1, True)
def test_a_key_written_twice_gets_one_verdict(
    text: bytes, key: str, value: Any, before: bool
) -> None:
    encoded = dumps(value, compact=True, ascii_only=False).encode("utf-8", "surrogatepass")
    verdict = check_frame(b'["EVENT","s",' + with_repeated_key(text, key, encoded, before) + b"]")
    if not before:  # the value written last counts
        assert verdict == precise_event(json.dumps({**json.loads(text), key: value}))


@needs_testdata
@given(
    st.sampled_from(REAL_EVENTS or [b"{}"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_real_events_are_accepted_however_a_relay_writes_them(
    text: bytes, compact: bool, ascii_only: bool, sort_keys: bool
) -> None:
    # Key order, spacing and escaping are the relay's choice; the event stays the same.
    original = check_frame(b'["EVENT","s",' + text + b"]")
    assert isinstance(original, Event)
    rewritten = dumps(json.loads(text), compact=compact, ascii_only=ascii_only, sort_keys=sort_keys)
    assert check_frame(f'["EVENT","s",{rewritten}]') == original
    assert encode_event(original) == text  # the file holds each event in our own encoding


@given(st.text(max_size=200) | st.binary(max_size=200) | json_values.map(json.dumps))
def test_decode_event_on_any_text_gives_an_event_or_a_reason(raw: str | bytes) -> None:
    verdict = precise_event(raw)
    if isinstance(verdict, Event):
        assert_verdict_is_independent(verdict)


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@given(
    st.integers(1, SECP256K1_ORDER - 1),
    st.integers(0, MAX_CREATED_AT),
    st.integers(0, MAX_KIND),
    st.lists(st.lists(_text, max_size=3), max_size=3),
    _text,
    st.booleans(),
)
@example(3, 1_700_000_000, 1, [["t", "\u2028\x7f"]], '\x00\x1f"\\/\u2029\ufeff', False)
def test_signed_events_verify_independently_through_both_decoders(
    secret: int, created_at: int, kind: int, tags: list[list[str]], content: str, ascii_only: bool
) -> None:
    # Our serializer signs; json.dumps must recompute the same id (any character included).
    event = sign_event(secret.to_bytes(32, "big"), created_at, kind, tags, content)
    assert independently_valid(event)
    rewritten = dumps(json.loads(encode_event(event)), compact=True, ascii_only=ascii_only)
    assert check_frame(f'["EVENT","s",{rewritten}]') == event
    assert check_frame(b'["EVENT","s",' + encode_event(event) + b"]") == event
