"""How many steps write the warehouse at once, following NOSTR_WAREHOUSE.

The DuckDB file allows one writing process. Every step that writes it declares the ``duckdb``
pool, to which data/dagster_home/dagster.yaml gives one slot, so steps of different runs take
turns; a run executes its steps one after another in its own process (a new interpreter per
step costs about 3 s, and nothing could run beside it), and a backfill is one run.

A DuckLake takes many writers. The raw assets then declare no pool; a backfill of
raw/nostr_events is cut into runs of NOSTR_DUCKLAKE_HOURS_PER_RUN hours, which the run queue
starts side by side (up to dagster.yaml's ``max_concurrent_runs``), each crawling and landing
its own hours; and a run executes its steps in processes of their own (the multiprocess
executor), so an hour's events, snapshots and geolocations are fetched at once. Two writers'
transactions that collide are run again by landing itself (``raw_table.in_transaction``),
never lost. dbt builds keep taking turns (the ``duckdb`` pool: dbt-duckdb runs one thread on
a lake), and a build that loses to a landing is retried by Dagster (``DBT_RETRY``).

Nothing here names a machine: under dagster-k8s (``K8sRunLauncher``, ``k8s_job_executor``) or
dagster-celery the same definitions put each run or step in a pod or a worker; only the
instance's dagster.yaml (and the executor, for k8s or celery) changes.
"""

from __future__ import annotations

import dagster as dg

from nostr_assets.settings import load_settings

_settings = load_settings()

ON_LAKE = _settings.warehouse == "ducklake"

# The pool of the steps that write raw tables: one slot for the file, none on a lake.
RAW_WRITERS_POOL: str | None = None if ON_LAKE else "duckdb"
# dbt builds take turns on both warehouses.
DBT_POOL = "duckdb"

# A dbt build on a lake can fail when a landing commits in the middle of one of its models'
# transactions (a SQLite catalog refuses the later commit). Its models are idempotent, so the
# build is run again, a little later. On the file no build ever overlaps a landing.
DBT_RETRY: dg.RetryPolicy | None = (
    dg.RetryPolicy(
        max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    )
    if ON_LAKE
    else None
)


def events_backfill_policy() -> dg.BackfillPolicy:
    """One run for a whole backfill on the file (one writer: runs would only queue); runs of
    NOSTR_DUCKLAKE_HOURS_PER_RUN hours on a lake, landing side by side."""
    if ON_LAKE:
        return dg.BackfillPolicy.multi_run(_settings.ducklake_hours_per_run)
    return dg.BackfillPolicy.single_run()


# The file: steps in the run's own process. A lake: each step in a process of its own.
EXECUTOR = dg.multiprocess_executor if ON_LAKE else dg.in_process_executor
