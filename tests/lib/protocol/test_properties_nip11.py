"""Properties of NIP-11 parsing, for any document a relay serves (hypothesis).

Protects: ``parse_nip11`` never raises, whatever the bytes or text; it gives either a document
and no error or no document and a known error with an empty ``Nip11Info``; and every field of
``Nip11Info`` has the type it declares (text that UTF-8 sinks such as DuckDB accept, integers
that fit a BIGINT, booleans only where booleans are meant), so a junk document cannot fail the
landing of a snapshot.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from json_strategies import json_values as json_value_strategy

from nostr_assets.lib.protocol.nip11 import Nip11Info, info_from_document, parse_nip11

TEXT_FIELDS = ("name", "description", "pubkey", "contact", "software", "version")
COUNT_FIELDS = ("max_limit", "max_message_length", "max_subscriptions")
FLAG_FIELDS = ("payment_required", "auth_required", "restricted_writes")

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),  # NaN and infinities too: json.dumps writes them and json.loads reads them
    st.text(max_size=20),
    st.sampled_from(["500", " 12 ", "٣", "1e3", "-1", "0x10", "\ud800", "A" * 64, "ab" * 32]),
)
json_values = json_value_strategy(json_scalars, max_leaves=10)
limitation = st.dictionaries(
    st.sampled_from([*COUNT_FIELDS, *FLAG_FIELDS, "min_pow_difficulty"]), json_values, max_size=6
)
documents = st.dictionaries(
    st.sampled_from([*TEXT_FIELDS, "supported_nips", "limitation", "icon", "x"]),
    st.one_of(json_values, limitation, st.lists(json_scalars, max_size=6)),
    max_size=8,
)


@st.composite
def served(draw) -> str | bytes:
    """What a relay might serve: a JSON document in any spelling, or anything at all."""
    source = draw(st.integers(0, 3))
    if source == 0:
        return draw(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
    value: Any = draw(documents) if source < 3 else draw(json_values)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), indent=draw(st.none() | st.just(1)))
    text = draw(st.sampled_from(["", "\ufeff", " "])) + text
    if draw(st.booleans()):
        return text
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16"])), "surrogatepass")


def assert_typed(info: Nip11Info) -> None:
    for name in TEXT_FIELDS:
        value = getattr(info, name)
        assert value is None or type(value) is str, name
        if value is not None:
            value.encode("utf-8")  # no lone surrogate reaches a UTF-8 sink
    if info.pubkey is not None:
        assert len(info.pubkey) == 64 and set(info.pubkey) <= set("0123456789abcdef")
    for name in COUNT_FIELDS:
        value = getattr(info, name)
        assert value is None or (type(value) is int and 0 <= value < 2**63), name
    for name in FLAG_FIELDS:
        assert getattr(info, name) in (None, True, False), name
    nips = info.supported_nips
    assert nips is None or (
        type(nips) is list and all(type(n) is int and 0 <= n < 2**63 for n in nips)
    )


@given(served())
@example(b"\xff\xfe{")  # not UTF-8
@example("[" * 100_000)  # nested past the recursion limit
@example('{"name": "\\ud800", "limitation": {"max_limit": 1e400}}')
@example('{"supported_nips": [1, "11", 1.0, true, -1, 1e300, NaN]}')
@example("1" * 5000)  # past int()'s 4300-digit limit
def test_any_document_parses_to_typed_fields_without_raising(raw: str | bytes) -> None:
    document, info, error = parse_nip11(raw)
    assert type(info) is Nip11Info
    assert_typed(info)
    if error is None:
        assert type(document) is dict
        assert info == info_from_document(document)
    else:
        assert error in ("not_json", "not_an_object")
        assert document is None and info == Nip11Info()


@given(documents)
def test_a_document_keeps_what_is_usable(doc: dict[str, Any]) -> None:
    # Served as plain UTF-8 JSON, the document comes back as written and each well-typed field
    # reaches Nip11Info unchanged.
    document, info, error = parse_nip11(json.dumps(doc).encode("utf-8", "surrogatepass"))
    assert error is None and json.dumps(document) == json.dumps(doc)
    for name in ("name", "description", "contact", "software", "version"):
        value = doc.get(name)
        if (
            type(value) is str
            and value.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == value
        ):
            assert getattr(info, name) == value
    flags = doc.get("limitation") if isinstance(doc.get("limitation"), dict) else {}
    for name in FLAG_FIELDS:
        assert getattr(info, name) == (flags.get(name) if type(flags.get(name)) is bool else None)
    assert dataclasses.asdict(info).keys() == {f.name for f in dataclasses.fields(Nip11Info)}
