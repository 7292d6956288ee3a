"""Shared fixtures: real nostr-relay instances on 127.0.0.1 serving the fixed test events.

The relays are session-scoped (starting one costs about 1.5 s): the crawler, Dagster asset and
dbt integration tests all read the same three relays and must not write to them. A test that
needs its own relay calls ``relays.start_relay(tmp_path, events)`` and stops it itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# The fixed test events are from 2024-01-01; the default first partition is far later. Set
# before anything imports the partitions definition.
os.environ.setdefault("NOSTR_PARTITIONS_START", "2024-01-01-00:00")

import pytest
from hypothesis import HealthCheck, settings
from relays import RelayHandle, make_events, start_relay

from nostr_assets.lib.protocol.event import Event

# Property-based tests run a fixed, bounded number of examples, derandomized so that a red CI
# run fails the same way on every machine; `HYPOTHESIS_PROFILE=deep` explores ten times further.
settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("deep", parent=settings.get_profile("ci"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def test_events() -> list[Event]:
    """Every fixed test event (3 hours from 2024-01-01T00:00Z, with a 120-event burst)."""
    return make_events()


def _subset(events: list[Event], keep: int) -> list[Event]:
    # Index modulo 3: relay A misses every third event, relay B another third, C holds all.
    return [e for i, e in enumerate(events) if i % 3 != keep]


@pytest.fixture(scope="session")
def relay_a(tmp_path_factory, test_events) -> Iterator[RelayHandle]:
    handle = start_relay(tmp_path_factory.mktemp("relay_a"), _subset(test_events, 2))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def relay_b(tmp_path_factory, test_events) -> Iterator[RelayHandle]:
    handle = start_relay(tmp_path_factory.mktemp("relay_b"), _subset(test_events, 0))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def relay_all(tmp_path_factory, test_events) -> Iterator[RelayHandle]:
    handle = start_relay(tmp_path_factory.mktemp("relay_all"), test_events)
    yield handle
    handle.stop()


# The fast tier (`make test-fast`, `pytest -m "not slow"`): everything that starts no relay,
# no dbt and no Dagster instance. A test that uses a session relay, or lives with the dbt or
# integration tests, is slow by that alone; modules that start their own servers say so with
# `pytestmark = pytest.mark.slow`.
_RELAY_FIXTURES = {"relay_a", "relay_b", "relay_all"}
_SLOW_FOLDERS = ("dbt", "integration")


def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0]
        if _RELAY_FIXTURES & set(item.fixturenames) or folder in _SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
