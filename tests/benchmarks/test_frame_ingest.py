"""Protects the frame ingest hot path: its fast paths give exactly what the precise decoders and
``IngestState`` give (same events, sightings and refusal reasons), bad data is counted and never
raised, a forged copy cannot suppress the real event, and the multi-process ingestor returns the
same result as the single-process one.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

# The two-process ingest is the benchmark's own (bench_ingest.py), not the package's.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from frame_ingest import FrameIngestor, IngestResult
from parallel_ingest import ParallelFrameIngestor

from nostr_assets.lib.protocol.event import (
    Event,
    InvalidEvent,
    decode_event,
    encode_event,
    sign_event,
)
from nostr_assets.lib.protocol.ingest import IngestState
from nostr_assets.lib.protocol.messages import BadFrame, EventMessage, decode_relay_message

A, B, C = "wss://a.example", "wss://b.example", "wss://c.example"


def _signed(n: int, seed: int = 3) -> list[Event]:
    rng = random.Random(seed)
    keys = [bytes(31) + bytes([k + 1]) for k in range(4)]
    events = []
    for i in range(n):
        kind = rng.choice((1, 1, 7, 3, 0))
        tags = [["p", f"{rng.getrandbits(256):064x}"] for _ in range(30 if kind == 3 else 1)]
        content = rng.choice(("gm 🤙", 'say "hi"\n', "ünïcödé \u2028", '{"name":"x"}', ""))
        events.append(sign_event(keys[i % 4], 1_700_000_000 + i, kind, tags, content))
    return events


def _frame(sub: str, event_text: bytes) -> bytes:
    return b'["EVENT",' + json.dumps(sub).encode() + b"," + event_text + b"]"


def _resorted(event: Event, **changes) -> bytes:
    obj = {f: getattr(event, f) for f in Event.__struct_fields__}
    obj.update(changes)
    return json.dumps(obj, sort_keys=True, indent=1).encode()


def _mixed_frames() -> list[tuple[str, bytes | str, float]]:
    """Duplicates, re-serialized copies, forged copies, invalid events and garbage, shuffled."""
    events = _signed(40)
    other = sign_event(bytes(31) + b"\x63", 1_700_000_000, 1, [], "someone else")
    frames: list[tuple[str, bytes | str]] = []
    for i, event in enumerate(events):
        text = encode_event(event)
        frames.append((A, _frame("s1", text)))
        if i % 4:
            frames.append((B, _frame("sub two", text)))  # byte-identical copy
            frames.append((B, _frame("sub two", text)))  # the same relay again
        if i % 3:
            frames.append((C, _frame("c", _resorted(event))))  # a relay that re-serializes
    real = events[0]
    forged = [
        _resorted(real, content="forged"),  # id_mismatch, claiming the real id
        _resorted(real, sig=other.sig),  # bad_signature, claiming the real id
        _resorted(real, pubkey=other.pubkey),  # id_mismatch
    ]
    frames += [(C, _frame("f", text)) for text in forged]
    frames.insert(0, (C, _frame("f", forged[0])))  # a forged copy that arrives first
    valid = encode_event(events[1])
    frames += [
        (A, _frame("x", _resorted(events[1], id=events[1].id.upper()))),  # bad_hex
        (A, _frame("x", _resorted(events[1], kind=70_000))),  # kind_out_of_range
        (A, _frame("x", _resorted(events[1], created_at=1.5))),  # bad_created_at
        (A, _frame("x", _resorted(events[1], created_at=2**70))),  # bad_created_at
        # msgspec refuses a lone surrogate escape anywhere in the frame: a not_json frame.
        (A, _frame("x", _resorted(events[1], content="\ud800"))),
        (A, _frame("x", _resorted(events[1], tags=[["e", 5]]))),  # bad_tags
        (A, _frame("x", valid.replace(b'"sig"', b'"sag"'))),  # missing_field
        (A, _frame("x", _resorted(events[1], pubkey="ab" * 31))),  # bad_length
        (A, _frame("x", b"[1,2]")),  # not_an_object
        # Valid, but its id key is spelled with an escape: no regex finds it.
        (B, _frame("esc", valid.replace(b'"id"', b'"\\u0069d"', 1))),
        # Valid, with an unknown field whose nested object claims another event's id.
        (B, _frame("n", b'{"x":{"id":"' + events[2].id.encode() + b'"},' + valid[1:])),
        (A, b""),
        (A, b"not json at all"),
        (A, b'["EVENT","s"]'),
        (A, b'["EVENT","s",' + valid + b',"extra"]'),
        (A, b'["EVENT","\xff",' + valid + b"]"),  # invalid UTF-8 in the subscription id
        (A, b'["EVENT","s",' + valid + b"] junk"),
        (A, b'{"EVENT":1}'),
        (A, b'["WHAT","s"]'),
        (A, b'["EOSE","s1"]'),
        (A, b'["NOTICE","hello"]'),
        (A, b'["CLOSED","s1","error: gone"]'),
        (C, _frame("str", _resorted(events[3])).decode()),  # websockets gives text frames as str
        (A, _frame("big", encode_event(events[4]) + b" " * 10)),  # whitespace after the event
    ]
    rng = random.Random(9)
    rng.shuffle(frames)
    frames.insert(0, (C, _frame("f", forged[0])))
    # Times are not monotonic, so "earliest" and "first fed" differ.
    return [(url, frame, 1_000.0 + rng.random() * 100) for url, frame in frames]


def _reference(frames) -> IngestResult:
    """The precise decoders and IngestState alone: what every fast path must reproduce."""
    state, result = IngestState(), IngestResult()
    for url, frame, seen_at in frames:
        try:
            message = decode_relay_message(frame)
        except BadFrame as error:
            result.bad_frames[error.reason] += 1
            continue
        if not isinstance(message, EventMessage):
            continue
        try:
            event = decode_event(message.event_json)
        except InvalidEvent as error:
            state.rejected[error.reason] += 1
            continue
        state.accept(url, event, seen_at)
    result.events, result.first_seen, result.sightings = (
        state.events,
        state.first_seen,
        state.sightings,
    )
    result.rejected = state.rejected
    return result


def _sequential(frames, **options) -> IngestResult:
    ingestor = FrameIngestor(**options)
    for url, frame, seen_at in frames:
        ingestor.feed(url, frame, seen_at)
    return ingestor.result()


def test_mixed_frames_give_exactly_the_precise_result():
    frames = _mixed_frames()
    expected = _reference(frames)
    assert _sequential(frames) == expected
    assert _sequential(frames, remember_texts=False) == expected
    batched = FrameIngestor()
    batched.feed_many(frames)
    assert batched.result() == expected
    # The set exercises what it claims to.
    assert len(expected.events) == 40
    assert expected.rejected["id_mismatch"] == 4  # forged[0] three times, forged[2] once
    assert expected.rejected["bad_signature"] == 1
    assert expected.rejected["bad_created_at"] == 2
    assert expected.rejected == {
        **{"id_mismatch": 4, "bad_signature": 1, "bad_created_at": 2},
        **dict.fromkeys(("bad_hex", "kind_out_of_range", "bad_tags", "missing_field"), 1),
        **dict.fromkeys(("bad_length", "not_an_object"), 1),
    }
    assert expected.bad_frames == {
        "not_json": 5,
        "bad_shape": 2,
        "not_an_array": 1,
        "unknown_type": 1,
    }


def test_forged_first_copy_does_not_suppress_the_real_event():
    real = _signed(1)[0]
    forged = _resorted(real, content="forged")
    ingestor = FrameIngestor()
    ingestor.feed(A, _frame("s", forged), 1.0)
    assert real.id not in ingestor.state.events
    ingestor.feed(B, _frame("s", encode_event(real)), 2.0)
    ingestor.feed(A, _frame("s", forged), 3.0)
    ingestor.feed(C, _frame("s", encode_event(real)), 0.5)
    assert ingestor.state.events == {real.id: real}
    assert ingestor.rejected == {"id_mismatch": 2}
    assert ingestor.state.sightings == {(real.id, B): 2.0, (real.id, C): 0.5}
    assert ingestor.state.first_seen == {real.id: 0.5}


def test_random_mangling_matches_the_precise_path_and_never_raises():
    events = _signed(6, seed=8)
    originals = [_frame("s", encode_event(e)) for e in events]
    originals += [_frame("t", _resorted(e)) for e in events]
    rng = random.Random(2)
    frames = [(A, frame, 1.0) for frame in originals]
    for i in range(3000):
        frame = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 2)):
            position = rng.randrange(len(frame))
            frame[position] = rng.choice(b'"[]{},:\\0aAf9 .-eE\x00\xff')
        frames.append((rng.choice((A, B)), bytes(frame), float(i)))
    expected = _reference(frames)
    assert _sequential(frames) == expected
    assert len(expected.events) == 6
    assert sum(expected.rejected.values()) + sum(expected.bad_frames.values()) > 1000


def test_oversized_frames_are_counted():
    event = _signed(1)[0]
    frame = _frame("s", encode_event(event))
    ingestor = FrameIngestor(max_frame_bytes=len(frame) - 1)
    ingestor.feed(A, frame, 1.0)
    assert ingestor.bad_frames == {"too_large": 1}
    assert ingestor.state.events == {}


@pytest.fixture(scope="module")
def mixed_frames():
    return _mixed_frames()


def test_parallel_equals_sequential(mixed_frames):
    expected = _sequential(mixed_frames)
    with ParallelFrameIngestor(workers=2) as parallel:
        parallel.feed_many(mixed_frames)
        result = parallel.finish()
    assert result == expected


def test_parallel_with_tiny_batches_and_three_workers(mixed_frames):
    expected = _sequential(mixed_frames)
    parallel = ParallelFrameIngestor(workers=3, batch_bytes=300)
    for url, frame, seen_at in mixed_frames:
        parallel.feed(url, frame, seen_at)
    assert parallel.finish() == expected
    with pytest.raises(RuntimeError):
        parallel.finish()


def test_parallel_with_nothing_fed():
    with ParallelFrameIngestor(workers=2) as parallel:
        assert parallel.finish() == IngestResult()
