"""Reading the dbt marts for a report: only marts that exist, values as JSON holds them.

A mart that does not exist yet (a warehouse dbt never built) reads as no rows, so a report over
a fresh warehouse says "no data" instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb

# Every mart the dashboard reads: its asset's dependencies in the lineage graph.
MARTS = (
    "fct_relays_by_country",
    "fct_events_hourly",
    "fct_active_pubkeys_daily",
    "fct_relay_health_hourly",
    "fct_relay_coverage",
    "fct_event_replication",
    "fct_nip_support",
    "fct_software_adoption",
    "fct_zaps_daily",
    "fct_long_form_daily",
)
# A row as the page embeds it: column name to JSON value.
Row = dict[str, Any]


def json_value(value: Any) -> Any:
    """A DuckDB value as the page's JSON holds it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; Vega-Lite skips a null
    return value


class MartReader:
    """Queries over the marts that exist; a query over a missing mart returns nothing."""

    def __init__(self, conn: duckdb.DuckDBPyConnection | None) -> None:
        self.conn = conn
        self.present: set[str] = set()
        if conn is not None:
            # Dates of timestamps (a day's active authors) are UTC days, as dbt computed them.
            conn.execute("set TimeZone = 'UTC'")
            tables = conn.execute(
                "select table_name from information_schema.tables where table_schema = 'main'"
            ).fetchall()
            self.present = {name for (name,) in tables} & set(MARTS)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(m for m in MARTS if m not in self.present)

    def has(self, *marts: str) -> bool:
        return all(m in self.present for m in marts)

    def rows(self, marts: Iterable[str], sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self.conn is None or not self.has(*marts):
            return []
        cursor = self.conn.execute(sql, list(params))
        names = [column[0] for column in cursor.description or []]
        return [
            {n: json_value(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()
        ]

    def value(self, marts: Iterable[str], sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, as DuckDB returns it; None when absent."""
        if self.conn is None or not self.has(*marts):
            return None
        row = self.conn.execute(sql, list(params)).fetchone()
        return None if row is None else row[0]
