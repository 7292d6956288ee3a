"""Protects the NIP-01 message codec: every relay message type decodes to what a relay meant,
the client messages we send are the NIP-01 arrays, garbage frames become ``BadFrame`` with
a reason code, never another exception, and the fast EVENT decoder never accepts what the
precise decoders would not (a key written twice means its last value on both).
"""

from __future__ import annotations

import json
import random
from collections import Counter

import msgspec
import pytest

from nostr_assets.lib.protocol.event import InvalidEvent, decode_event, encode_event, sign_event
from nostr_assets.lib.protocol.messages import (
    BAD_FRAME_REASONS,
    AuthMessage,
    BadFrame,
    ClosedMessage,
    CountMessage,
    EoseMessage,
    EventMessage,
    NoticeMessage,
    OkMessage,
    RelayMessage,
    decode_event_frame,
    decode_relay_message,
    encode_close,
    encode_count,
    encode_req,
)


def encode_relay_message(message: RelayMessage) -> bytes:
    """What a relay would send for ``message``: written here, independently of the decoder."""
    match message:
        case EventMessage(sub, event_json):
            return b'["EVENT",' + json.dumps(sub).encode() + b"," + event_json + b"]"
        case EoseMessage(sub):
            return msgspec.json.encode(["EOSE", sub])
        case ClosedMessage(sub, text):
            return msgspec.json.encode(["CLOSED", sub, text])
        case NoticeMessage(text):
            return msgspec.json.encode(["NOTICE", text])
        case OkMessage(event_id, accepted, text):
            return msgspec.json.encode(["OK", event_id, accepted, text])
        case AuthMessage(challenge):
            return msgspec.json.encode(["AUTH", challenge])
        case CountMessage(sub, count):
            return msgspec.json.encode(["COUNT", sub, {"count": count}])
    raise TypeError(f"not a relay message: {message!r}")


EVENT = sign_event(bytes(31) + b"\x09", 1_700_000_000, 1, [["t", "x"]], 'gm "ñ" 🤙\n')

RELAY_MESSAGES = [
    EventMessage("sub-1", encode_event(EVENT)),
    EoseMessage("sub-1"),
    ClosedMessage("sub-1", "auth-required: sign in first"),
    ClosedMessage("sub-1", ""),
    NoticeMessage("slow down ⏳"),
    OkMessage(EVENT.id, True, ""),
    OkMessage(EVENT.id, False, "rate-limited: wait"),
    AuthMessage("challenge-123"),
    CountMessage("c", 42),
]


@pytest.mark.parametrize("message", RELAY_MESSAGES, ids=lambda m: type(m).__name__)
def test_relay_messages_round_trip(message):
    assert decode_relay_message(encode_relay_message(message)) == message


def test_event_payload_round_trips_to_the_same_event():
    decoded = decode_relay_message(encode_relay_message(RELAY_MESSAGES[0]))
    assert decode_event(decoded.event_json) == EVENT


def test_closed_and_ok_prefixes():
    assert ClosedMessage("s", "auth-required: sign in").prefix == "auth-required"
    assert ClosedMessage("s", "Rate-Limited: later").prefix == "rate-limited"
    assert ClosedMessage("s", "no prefix here").prefix == ""
    assert ClosedMessage("s", "whatever: not a known prefix").prefix == ""
    assert OkMessage(EVENT.id, False, "duplicate: have it").prefix == "duplicate"


def test_closed_without_message_and_ok_without_text_decode():
    assert decode_relay_message(b'["CLOSED","s"]') == ClosedMessage("s", "")
    assert decode_relay_message(b'["OK","abc",true]') == OkMessage("abc", True, "")


def test_client_messages_are_nip01_arrays():
    filters = ({"kinds": [1], "since": 10, "until": 20, "limit": 500}, {"authors": [EVENT.pubkey]})
    assert json.loads(encode_req("s", *filters)) == ["REQ", "s", *filters]
    assert json.loads(encode_count("s", filters[0])) == ["COUNT", "s", filters[0]]
    assert json.loads(encode_close("s")) == ["CLOSE", "s"]


def test_str_frames_decode_like_bytes():
    frame = encode_relay_message(RELAY_MESSAGES[4])
    assert decode_relay_message(frame.decode()) == decode_relay_message(frame)


GARBAGE = [
    ("not_json", b""),
    ("not_json", b"["),
    ("not_json", b'["EVENT","s",{"id":}]'),
    ("not_json", b'["NOTICE","\xff"]'),  # invalid UTF-8 inside a string
    ("not_json", b'["EV\xffENT","s",{}]'),
    ("not_json", b'["EOSE","s"] trailing'),
    ("not_an_array", b'{"EVENT":1}'),
    ("not_an_array", b'"EVENT"'),
    ("not_an_array", b"42"),
    ("bad_shape", b"[]"),
    ("bad_shape", b'[1,"s"]'),
    ("bad_shape", b'["EVENT","s"]'),
    ("bad_shape", b'["EVENT",1,{}]'),
    ("bad_shape", b'["EOSE"]'),
    ("bad_shape", b'["OK","id","yes","m"]'),
    ("bad_shape", b'["COUNT","s",{"count":"7"}]'),
    ("bad_shape", b'["COUNT","s",{"count":true}]'),
    ("bad_shape", b'["NOTICE",{"a":1}]'),
    ("unknown_type", b'["HELLO","s"]'),
    ("unknown_type", b'["event","s",{}]'),
]


def test_garbage_frames_give_reasons():
    counted = Counter()
    for expected, frame in GARBAGE:
        with pytest.raises(BadFrame) as caught:
            decode_relay_message(frame)
        assert caught.value.reason == expected, frame
        counted[caught.value.reason] += 1
    with pytest.raises(BadFrame) as caught:
        decode_relay_message(encode_relay_message(RELAY_MESSAGES[0]), max_bytes=100)
    counted[caught.value.reason] += 1
    assert set(counted) == set(BAD_FRAME_REASONS)


def test_random_mangling_only_raises_bad_frame():
    rng = random.Random(11)
    frames = [encode_relay_message(m) for m in RELAY_MESSAGES]
    outcomes = Counter()
    for _ in range(4000):
        frame = bytearray(rng.choice(frames))
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(frame))
            frame[position] = rng.choice(b'"[]{},:\\0tfn1-\x00\xff\xc3')
        try:
            decode_relay_message(bytes(frame))
            outcomes["decoded"] += 1
        except BadFrame as error:
            assert error.reason in BAD_FRAME_REASONS
            outcomes[error.reason] += 1
    assert outcomes["decoded"] > 0
    assert len(outcomes) >= 4


def test_deeply_nested_frame_is_a_reason_not_a_crash():
    frame = ("[" * 100_000 + "]" * 100_000).encode()
    with pytest.raises(BadFrame):
        decode_relay_message(frame)
    nested = json.dumps(["EVENT", "s", {}])[:-1] + "," + "[" * 5000 + "]" * 5000 + "]"
    with pytest.raises(BadFrame):
        decode_relay_message(nested)


# ---- one event text, one verdict on both decoders (issue 10) -----------------------------

LONG_FORM = sign_event(bytes(31) + b"\x09", 1_700_000_000, 30023, [["d", "a"]], "article")


def _verdicts(event_text: bytes) -> tuple[object, object]:
    """(fast path, precise path): each the event, None / a refusal reason."""
    frame = b'["EVENT","s",' + event_text + b"]"
    fast = decode_event_frame(frame)
    message = decode_relay_message(frame)
    assert isinstance(message, EventMessage)
    try:
        precise: object = decode_event(message.event_json)
    except InvalidEvent as error:
        precise = error.reason
    return (fast[1] if fast else None), precise


def _repeat(event_text: bytes, key: bytes, first: bytes) -> bytes:
    """The text with ``"key":first`` written before the key's real occurrence."""
    return event_text.replace(
        b'"' + key + b'":', b'"' + key + b'":' + first + b',"' + key + b'":', 1
    )


@pytest.mark.parametrize(
    ("key", "first"),
    [
        (b"kind", b"30023067219"),  # the case of issue 10: out of range, then the real kind
        (b"kind", b"-1"),
        (b"created_at", b"-5"),
        (b"created_at", b"99999999999999999999999"),
        (b"id", b'"NOT HEX"'),
        (b"sig", b'""'),
        (b"content", b'"forged"'),
    ],
)
def test_a_repeated_key_means_its_last_value_on_both_paths(key, first):
    text = _repeat(encode_event(LONG_FORM), key, first)
    assert text.count(b'"' + key + b'":') == 2
    assert _verdicts(text) == (LONG_FORM, LONG_FORM)


def test_a_repeated_key_whose_last_value_is_bad_is_refused_on_both_paths():
    text = encode_event(LONG_FORM).replace(b'"kind":30023', b'"kind":30023,"kind":30023067219')
    assert _verdicts(text) == (None, "kind_out_of_range")
    # A last value of the wrong type; the fast path leaves it to the precise one.
    text = encode_event(LONG_FORM).replace(b'"kind":30023', b'"kind":30023,"kind":"1"')
    assert _verdicts(text) == (None, "bad_kind")


def test_an_earlier_value_of_the_wrong_type_is_noise_too():
    # The fast path's typed decoder refuses the frame, and the precise path, reading the last
    # value as JSON.parse would, accepts it: the pipeline's verdict is the precise one.
    text = _repeat(encode_event(LONG_FORM), b"kind", b'"x"')
    assert _verdicts(text) == (None, LONG_FORM)


def test_text_frames_with_a_lone_surrogate_are_counted_not_raised():
    # A str frame can hold a lone surrogate, which has no UTF-8 (found by hypothesis: msgspec
    # raised UnicodeEncodeError through both decoders).
    with pytest.raises(BadFrame) as caught:
        decode_relay_message('["NOTICE","\ud800"]')
    assert caught.value.reason == "not_json"
    assert decode_event_frame('["EVENT","s",{"content":"\ud800"}]') is None
    text = encode_event(EVENT).decode().replace('"content":"', '"content":"\ud800', 1)
    with pytest.raises(InvalidEvent) as refused:
        decode_event(text)
    assert refused.value.reason == "lone_surrogate"
