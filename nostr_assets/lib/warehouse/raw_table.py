"""What one raw table is (name, grain, columns as DDL, partition column), and how a table that
an older version of this code created is brought up to date without losing a row.

Each raw table is declared once, in its own module under ``tables/``, beside the function that
builds its rows. The DDL there is the only schema: landing asks DuckDB for the column types,
and the upgrade compares the warehouse with it.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import duckdb

from nostr_assets.lib.warehouse.lake import is_lake, writer_turn

RAW_SCHEMA = "raw"

# Type changes DuckDB makes in place without losing a value: every value of the old type is a
# value of the new one. Anything else (a narrower type, another kind) needs a person.
WIDENINGS = frozenset(
    {
        ("TINYINT", "SMALLINT"),
        ("TINYINT", "INTEGER"),
        ("TINYINT", "BIGINT"),
        ("SMALLINT", "INTEGER"),
        ("SMALLINT", "BIGINT"),
        ("INTEGER", "BIGINT"),
        ("FLOAT", "DOUBLE"),
    }
)


_CONSTRAINTS = frozenset({"primary", "unique", "check", "foreign", "constraint"})


class SchemaMismatch(RuntimeError):
    """The warehouse holds a raw table this code cannot use or change without losing data.

    ``problems`` is one line per column or key that differs, naming the table, what the
    warehouse has and what this version expects.
    """

    def __init__(self, database: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"the warehouse {database} does not match this version's raw tables, and changing "
            f"it would lose data, so nothing was changed:\n{lines}\n"
            "Use the version that made it, or move the file away and let this one start anew."
        )


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Any:
    """The one value a query returns (DuckDB always returns a row for an aggregate)."""
    row = conn.execute(sql, params or []).fetchone()
    if row is None:
        raise LookupError(f"no row from: {sql}")
    return row[0]


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: committed when the block ends, rolled back when it raises.

    A commit that fails (disk full, file too large) leaves no transaction behind: DuckDB has
    already aborted it, and a rollback then fails with "no transaction is active". That second
    error must not take the place of the first, which is the one that says what went wrong.
    """
    conn.execute("begin transaction")
    try:
        yield
        conn.execute("commit")
    except BaseException:
        with suppress(duckdb.Error):
            conn.execute("rollback")
        raise


T = TypeVar("T")

# How a transaction that lost to another writer of the same DuckLake says so. Nothing of it was
# kept, and running it again from the start is correct. A SQLite catalog answers "database is
# locked" when another process committed after this transaction first read it (SQLite cannot
# then upgrade the read to a write, and does not wait); DuckLake's own check says "Transaction
# conflict" (two writers creating the same schema, say); Postgres "could not serialize access"
# or "deadlock detected". The DuckDB file never produces them: it has one writing process.
CONFLICT_MARKERS = (
    "database is locked",
    "transaction conflict",
    "write-write conflict",
    "could not serialize access",
    "deadlock detected",
)
# About a minute of trying (0.02 s doubling to 2 s, with jitter so that two writers that
# collided do not collide again) before the step fails and says why; nothing is lost either way.
CONFLICT_ATTEMPTS = 40
FIRST_CONFLICT_DELAY_S = 0.02
MAX_CONFLICT_DELAY_S = 2.0

_conflicts_retried = 0


class WriterConflict(RuntimeError):
    """A transaction lost to other writers of the lake every time it was tried."""


def is_conflict(error: BaseException) -> bool:
    """Whether ``error`` is a transaction losing to another writer (worth running again)."""
    text = str(error).lower()
    return isinstance(error, duckdb.Error) and any(m in text for m in CONFLICT_MARKERS)


def conflicts_retried() -> int:
    """How many transactions this process has run again after losing to another writer."""
    return _conflicts_retried


def in_transaction(conn: duckdb.DuckDBPyConnection, body: Callable[[], T]) -> T:
    """``body()`` in one transaction, run again from the start while it loses to another writer.

    ``body`` must be safe to repeat (everything it did was rolled back). On the DuckDB file this
    is ``transaction()``: one process writes it, so no transaction ever loses.
    """
    global _conflicts_retried
    delay = FIRST_CONFLICT_DELAY_S
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            with writer_turn(conn), transaction(conn):
                return body()
        except duckdb.Error as error:
            if not is_conflict(error):
                raise
            if attempt == CONFLICT_ATTEMPTS:
                raise WriterConflict(
                    f"gave up after {attempt} attempts, each lost to another writer of the "
                    f"warehouse; nothing of it was kept. The last refusal: {error}"
                ) from error
        _conflicts_retried += 1
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, MAX_CONFLICT_DELAY_S)
    raise AssertionError("unreachable: the last attempt returns or raises")


@dataclass(frozen=True)
class RawTable:
    """One table of the ``raw`` schema.

    ``columns`` is the body of a ``create table`` (columns, then constraints), as DuckDB reads
    it; a column added later must be nullable or have a default, so that the rows already
    stored have a value.
    """

    name: str
    grain: str
    columns: str
    # The column a partition (an hour) is selected by; None for tables not partitioned.
    time_column: str | None = None

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        """The columns in DDL order: the first word of each line that is not a constraint."""
        names = []
        for line in self.columns.splitlines():
            word = line.split("--", 1)[0].strip().split(" ", 1)[0]
            if word and word.lower() not in _CONSTRAINTS:
                names.append(word)
        return tuple(names)

    @cached_property
    def primary_key(self) -> tuple[str, ...]:
        """The key columns as the DDL declares them (inline, or a ``primary key (...)`` line)."""
        for line in self.columns.splitlines():
            code = line.split("--", 1)[0].strip()
            if code.lower().startswith("primary key"):
                inside = code[code.index("(") + 1 : code.rindex(")")]
                return tuple(name.strip() for name in inside.split(","))
            if re.search(r"\sprimary key\b", code, flags=re.IGNORECASE):
                return (code.split(" ", 1)[0],)
        return ()

    @cached_property
    def lake_columns(self) -> str:
        """``columns`` without the primary key, which DuckLake does not support (it refuses
        PRIMARY KEY and UNIQUE). On the lake the landing code keeps the key unique itself:
        see ``landing.check_key``."""
        lines = []
        for line in self.columns.splitlines():
            code = line.split("--", 1)[0]
            if not code.strip() or code.strip().lower().startswith("primary key"):
                continue
            # A key column is NOT NULL by being the key: without the key it must say so.
            lines.append(
                re.sub(r"\s+primary key\b", " not null", code, flags=re.IGNORECASE).rstrip()
            )
        return "\n".join(lines).rstrip().rstrip(",")

    @property
    def qualified(self) -> str:
        return f"{RAW_SCHEMA}.{self.name}"

    def create_sql(self, lake: bool = False) -> str:
        columns = self.lake_columns if lake else self.columns
        return f"create table if not exists {self.qualified} ({columns})"


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    nullable: bool
    default: str | None


def _columns(conn: duckdb.DuckDBPyConnection, database: str, schema: str, table: str):
    rows = conn.execute(
        """
        select column_name, data_type, is_nullable, column_default from duckdb_columns()
        where database_name = $1 and schema_name = $2 and table_name = $3
        order by column_index
        """,
        [database, schema, table],
    ).fetchall()
    return {
        name: _Column(name, type_, nullable, default) for name, type_, nullable, default in rows
    }


def _primary_key(conn: duckdb.DuckDBPyConnection, database: str, schema: str, table: str):
    row = conn.execute(
        """
        select constraint_column_names from duckdb_constraints()
        where database_name = $1 and schema_name = $2 and table_name = $3
          and constraint_type = 'PRIMARY KEY'
        """,
        [database, schema, table],
    ).fetchone()
    return tuple(row[0]) if row else ()


def plan_upgrade(conn: duckdb.DuckDBPyConnection, table: RawTable) -> tuple[list[str], list[str]]:
    """``(statements, problems)`` that bring an existing ``table`` to its declared schema.

    Statements only add what is missing or loosen what is stricter than declared; each problem
    is a difference that no statement can bridge without losing or inventing data. The
    declared schema is read back from DuckDB itself (a temporary table made from the DDL), so
    types compare in DuckDB's own spelling.
    """
    database = scalar(conn, "select current_database()")
    lake = is_lake(conn)
    scratch = f"_declared_{table.name}"
    declared_columns = table.lake_columns if lake else table.columns
    conn.execute(f"create or replace temp table {scratch} ({declared_columns})")
    try:
        declared = _columns(conn, "temp", "main", scratch)
        declared_key = _primary_key(conn, "temp", "main", scratch)
    finally:
        conn.execute(f"drop table if exists temp.main.{scratch}")
    stored = _columns(conn, database, RAW_SCHEMA, table.name)
    stored_key = _primary_key(conn, database, RAW_SCHEMA, table.name)

    where = table.qualified
    statements: list[str] = []
    problems: list[str] = []
    if stored_key != declared_key:
        problems.append(
            f"{where}: primary key is ({', '.join(stored_key)}) in the warehouse, "
            f"({', '.join(declared_key)}) in this version"
        )
    for name in stored.keys() - declared.keys():
        problems.append(
            f"{where}.{name}: in the warehouse but unknown to this version (made by a newer "
            "one?); landing would leave it empty"
        )
    for column in declared.values():
        old = stored.get(column.name)
        if old is None:
            if not column.nullable and column.default is None:
                problems.append(
                    f"{where}.{column.name}: new, NOT NULL and without a default, so the rows "
                    "already stored would have no value"
                )
                continue
            default = f" default {column.default}" if column.default is not None else ""
            statements.append(
                f"alter table {where} add column {column.name} {column.type}{default}"
            )
            # DuckLake refuses SET NOT NULL on a column without statistics, which a column
            # just added has none of (DuckLake of DuckDB 1.5.5): on the lake it stays nullable,
            # and its default fills it.
            if not column.nullable and not lake:
                statements.append(f"alter table {where} alter column {column.name} set not null")
            continue
        if old.type != column.type:
            if (old.type, column.type) in WIDENINGS and column.name not in declared_key:
                statements.append(
                    f"alter table {where} alter column {column.name} type {column.type}"
                )
            else:
                problems.append(
                    f"{where}.{column.name}: {old.type} in the warehouse, {column.type} in this "
                    "version, and not every value converts"
                )
        if old.nullable and not column.nullable and not lake:
            count = scalar(conn, f"select count(*) from {where} where {column.name} is null")
            if count:
                problems.append(
                    f"{where}.{column.name}: NOT NULL in this version, but {count} stored "
                    "row(s) have no value"
                )
            else:
                statements.append(f"alter table {where} alter column {column.name} set not null")
        elif not old.nullable and column.nullable:
            statements.append(f"alter table {where} alter column {column.name} drop not null")
    return statements, problems
