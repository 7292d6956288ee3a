"""dbt, pointed at the warehouse the Python assets write."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtCliResource
from pydantic import Field

from nostr_assets.defs.resources.fields import about


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of the block, then put them back."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class NostrDbtResource(DbtCliResource):
    """dbt, pointed at the warehouse the Python assets write.

    dbt's profile reads NOSTR_DUCKDB_PATH; dagster-dbt builds the dbt process's environment
    from os.environ inside `cli()` (and loads the profile there too, for its adapter). Setting
    the resolved absolute path for exactly that call means dbt opens the file this resource
    names, whether it came from the environment, a default or a test, and whatever the
    working directory.
    """

    duckdb_path: str = Field(description=about("NOSTR_DUCKDB_PATH"))

    def cli(self, args, **kwargs):
        with _environment(NOSTR_DUCKDB_PATH=str(Path(self.duckdb_path).resolve())):
            return super().cli(args, **kwargs)
