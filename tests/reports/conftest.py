"""The dashboard tests' warehouse: the marts of the hand-made raw dataset (tests/raw_fixture.py),
built by dbt once per session (about 10 s) and only read afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_marts import build_fixture_marts


@pytest.fixture(scope="session")
def fixture_marts(tmp_path_factory) -> Path:
    return build_fixture_marts(tmp_path_factory.mktemp("marts"))
