"""dbt run in-process on a test warehouse, and the marts of the hand-made raw dataset
(tests/raw_fixture.py): shared by the dbt tests and the dashboard tests that check what the
page shows against those marts."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt.cli.main import dbtRunner
from raw_fixture import write_raw_fixture

from nostr_assets.defs.dbt.assets import release_duckdb

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"


def dbt_build(db_path: Path, target_path: Path, *args: str) -> None:
    """Run `dbt build` in-process against ``db_path``; fail the test on any error."""
    dbt_command("build", {"NOSTR_DUCKDB_PATH": str(db_path)}, target_path, *args)


def dbt_command(command: str, environ: dict[str, str], target_path: Path, *args: str) -> None:
    """Run dbt ``command`` (build, run ...) in-process with ``environ`` added to the
    environment (the variables the profile reads, e.g. NOSTR_WAREHOUSE=ducklake and the lake's);
    fail the test on any error."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in environ.items():
            mp.setenv(name, value)
        result = dbtRunner().invoke(
            [
                command,
                "--project-dir",
                str(PROJECT_DIR),
                "--profiles-dir",
                str(PROJECT_DIR),
                "--target-path",
                str(target_path),
                "--log-path",
                str(target_path),
                "--quiet",
                *args,
            ]
        )
    # dbt-duckdb keeps its DuckDB instance open in this process after the run; close it so the
    # test can open the file (DuckDB refuses a second instance with another configuration).
    release_duckdb()
    assert result.success, f"dbt {command} {args} failed: {result.exception}"


def build_fixture_marts(root: Path) -> Path:
    """The raw fixture written to ``root``/nostr.duckdb and built through every model once (no
    vars: all history); returns the warehouse's path. About 10 s."""
    db_path = root / "nostr.duckdb"
    write_raw_fixture(db_path)
    dbt_build(db_path, root / "target")
    return db_path
