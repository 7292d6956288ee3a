"""Protects event validation: every refusal reason is reachable and counted (no other exception
escapes), canonical serialization and ids match NIP-01 byte for byte, BIP-340 verification
agrees with the official vectors, and real relay events verify.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from coincurve import PublicKeyXOnly

from nostr_assets.lib.protocol.event import (
    REJECT_REASONS,
    Event,
    EventVerifier,
    InvalidEvent,
    canonical_serialization,
    decode_event,
    encode_event,
    event_from_obj,
    sign_event,
)

TESTDATA = Path(__file__).resolve().parents[4] / "shared" / "testdata"
needs_testdata = pytest.mark.skipif(not TESTDATA.is_dir(), reason="shared/testdata is absent")

SECRET = bytes(31) + b"\x07"
# BIP-340 vector 5: an x coordinate with no point on secp256k1.
OFF_CURVE = "eefdea4cdb677750a420fee807eacf21eb9898ae79b9768766e4faa04a2d4a34"


def _valid() -> Event:
    return sign_event(SECRET, 1_700_000_000, 1, [["t", "nostr"]], "gm 🤙", aux_rand=bytes(32))


def _obj(**changes) -> dict:
    obj = json.loads(encode_event(_valid()))
    obj.update(changes)
    return obj


def _text(**changes) -> bytes:
    return json.dumps(_obj(**changes)).encode()


def _refusal(raw: bytes | str, verifier: EventVerifier) -> str | None:
    """The pipeline's contract: a reason code or None; any other exception fails the test."""
    try:
        event = decode_event(raw)
    except InvalidEvent as error:
        return error.reason
    return verifier.reject_reason(event)


def _with_id(obj: dict) -> bytes:
    """The object with its id recomputed, so that only the later checks can fail."""
    event = Event(**{**obj, "id": "0" * 64})
    return json.dumps(
        {**obj, "id": hashlib.sha256(canonical_serialization(event)).hexdigest()}
    ).encode()


def _missing_sig() -> bytes:
    obj = _obj()
    del obj["sig"]
    return json.dumps(obj).encode()


def _flipped_sig() -> bytes:
    sig = _obj()["sig"]
    return _text(sig=sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:])


CASES = [
    ("not_json", b'{"id": "abc'),
    ("not_json", b"\xff\xfe"),
    ("not_json", b'{"extra":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),  # absurd nesting
    ("not_an_object", b"[1, 2, 3]"),
    ("not_an_object", b'"an event"'),
    ("missing_field", _missing_sig()),
    ("bad_hex", _text(id="A" * 64)),
    ("bad_hex", _text(pubkey="g" * 64)),
    ("bad_hex", _text(sig="Z" * 128)),
    ("bad_hex", _text(id=123)),
    ("bad_length", _text(id="a" * 63)),
    ("bad_length", _text(sig="a" * 130)),
    ("bad_created_at", _text(created_at=1.5)),
    ("bad_created_at", _text(created_at="1700000000")),
    ("bad_created_at", _text(created_at=-1)),
    ("bad_created_at", _text(created_at=2**64)),
    ("bad_kind", _text(kind="1")),
    ("bad_kind", _text(kind=1.0)),
    ("kind_out_of_range", _text(kind=65536)),
    ("kind_out_of_range", _text(kind=-1)),
    ("bad_tags", _text(tags=[["e", 1]])),
    ("bad_tags", _text(tags=["e"])),
    ("bad_tags", _text(tags={"e": "x"})),
    ("bad_content", _text(content=5)),
    ("bad_content", _text(content=None)),
    ("lone_surrogate", _text(content="\ud800")),
    ("lone_surrogate", _text(tags=[["t", "\udc00x"]])),
    ("id_mismatch", _text(content="edited after signing")),
    ("invalid_pubkey", _with_id(_obj(pubkey=OFF_CURVE))),
    ("bad_signature", _flipped_sig()),
    ("bad_signature", _with_id(_obj(content="signed by nobody"))),
]


def test_every_reject_reason_is_reached_and_counted():
    verifier = EventVerifier()
    counted = Counter()
    for expected, raw in CASES:
        reason = _refusal(raw, verifier)
        assert reason == expected, (expected, raw[:80])
        counted[reason] += 1
    assert set(counted) == set(REJECT_REASONS)
    assert sum(counted.values()) == len(CASES)
    assert _refusal(encode_event(_valid()), verifier) is None


def test_mangled_events_only_ever_give_reason_codes():
    """Random byte edits of a valid event: each is accepted or refused with a known reason."""
    rng = random.Random(5)
    verifier = EventVerifier()
    original = encode_event(_valid())
    seen = Counter()
    for _ in range(3000):
        raw = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(raw))
            if rng.random() < 0.5:
                raw[position] = rng.choice(b'"{}[]:,\\0aAz9 -.eE\x00\xff')
            else:
                del raw[position]
        seen[_refusal(bytes(raw), verifier)] += 1
    assert set(seen) - {None} <= set(REJECT_REASONS)
    assert len(seen) >= 6  # the edits reached many different checks


def test_decode_accepts_str_and_round_trips():
    event = _valid()
    assert decode_event(encode_event(event).decode()) == event
    assert decode_event(encode_event(event)) == event
    assert event_from_obj(json.loads(encode_event(event))) == event
    with pytest.raises(InvalidEvent) as caught:
        event_from_obj([1])
    assert caught.value.reason == "not_an_object"


@needs_testdata
def test_canonical_serialization_matches_every_nip01_case():
    cases = json.loads((TESTDATA / "nip01" / "nip01-serialization-cases.json").read_text())
    assert len(cases["cases"]) >= 20
    verifier = EventVerifier()
    for case in cases["cases"]:
        event = event_from_obj(case["event"])
        expected = bytes.fromhex(case["serialized_utf8_hex"])
        assert canonical_serialization(event) == expected, case["description"]
        assert expected == case["serialized"].encode()
        assert hashlib.sha256(canonical_serialization(event)).hexdigest() == case["event"]["id"], (
            case["description"]
        )
        assert verifier.reject_reason(event) is None, case["description"]
        # The same event arriving as JSON text parses to the same thing.
        assert decode_event(json.dumps(case["event"])) == event


def _bip340_vectors() -> list[dict]:
    with (TESTDATA / "bip340" / "test-vectors.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@needs_testdata
def test_bip340_vectors_with_32_byte_messages():
    checked = 0
    invalid_keys = Counter()
    for row in _bip340_vectors():
        message = bytes.fromhex(row["message"])
        if len(message) != 32:
            continue
        expected = row["verification result"] == "TRUE"
        try:
            key = PublicKeyXOnly(bytes.fromhex(row["public key"]))
        except ValueError:
            invalid_keys[row["index"]] += 1  # counted, as the verifier counts invalid_pubkey
            assert not expected
            continue
        assert key.verify(bytes.fromhex(row["signature"]), message) is expected, row["index"]
        checked += 1
    assert checked >= 12
    # Vector 5 (not on the curve) and 14 (beyond the field size).
    assert set(invalid_keys) == {"5", "14"}


@needs_testdata
def test_verifier_counts_off_curve_vector_keys_as_invalid_pubkey():
    verifier = EventVerifier()
    for row in _bip340_vectors():
        if row["index"] in ("5", "14"):
            obj = _obj(pubkey=row["public key"].lower())
            assert _refusal(_with_id(obj), verifier) == "invalid_pubkey"


@needs_testdata
def test_real_events_all_verify_and_the_bad_id_is_refused():
    verifier = EventVerifier()
    lines = (TESTDATA / "events" / "real-events.jsonl").read_bytes().splitlines()
    reasons = Counter(_refusal(line, verifier) for line in lines if line.strip())
    assert reasons == Counter({None: len([line for line in lines if line.strip()])})
    assert len(lines) > 1000
    bad = (TESTDATA / "events" / "nostrify-event-1-BAD-ID.json").read_bytes()
    assert _refusal(bad, verifier) == "id_mismatch"
