"""One vocabulary of failures: the dbt tests check the warehouse against the same values the
Python code writes, and every class the crawler records is one of them."""

from __future__ import annotations

from pathlib import Path

from nostr_assets.lib.failures import STORED, ErrorClass, GuardReason, Nip11Failure, dbt_macros

MACROS = Path(__file__).resolve().parents[2] / "dbt_project" / "macros" / "failures.sql"


def test_the_dbt_macros_are_generated_from_the_vocabulary():
    # Regenerate with: python -m nostr_assets.lib.failures > dbt_project/macros/failures.sql
    assert MACROS.read_text() == dbt_macros()
    for name, vocabulary in STORED.items():
        assert f"macro {name}()" in MACROS.read_text()
        assert all(f"'{member.value}'" in MACROS.read_text() for member in vocabulary)


def test_shared_failures_are_spelled_alike():
    # A NIP-11 fetch and a websocket that fail for one reason record the same word.
    for member in Nip11Failure:
        if member.name in ErrorClass.__members__:
            assert ErrorClass[member.name].value == member.value
    assert GuardReason.INVALID_URL == ErrorClass.INVALID_URL == Nip11Failure.INVALID_URL
    # Values are what the warehouse stores: lowercase words, no reasons glued on.
    for vocabulary in STORED.values():
        for member in vocabulary:
            assert member.value.replace("_", "").isalnum() and member.value.islower()
