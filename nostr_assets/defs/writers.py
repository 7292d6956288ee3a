"""How many processes write the warehouse at once, following NOSTR_WAREHOUSE.

The DuckDB file allows one writing process. Every step that writes it declares the ``duckdb``
pool, to which data/dagster_home/dagster.yaml gives one slot, so steps of different runs take
turns; a run executes its steps one after another in its own process (a new interpreter per
step costs about 3 s, and nothing could run beside it).

A DuckLake takes many writers:
- a run of raw/nostr_events over several hours (a backfill is one run, as on the file, so the
  CLI's ``--partition-range`` and the UI work alike) splits its range between
  NOSTR_DUCKLAKE_WRITERS processes, each crawling and landing a contiguous share, each hour
  still one transaction;
- the raw writers declare no pool, so runs (a backfill, the hourly run, a late-events re-fetch)
  land side by side;
- a run executes its steps in processes of their own (the multiprocess executor), so an hour's
  events, snapshots and geolocations are fetched at once.
Two writers' transactions that collide are run again by landing itself
(``raw_table.in_transaction``), never lost. dbt builds keep taking turns (the ``duckdb`` pool:
dbt-duckdb runs one thread on a lake), and a build that loses to a landing is retried by
Dagster (``DBT_RETRY``).

Nothing here names a machine: under dagster-k8s (``K8sRunLauncher``, ``k8s_job_executor``) or
dagster-celery (``celery_executor``) the same definitions put each run or step in a pod or a
worker; only the instance's dagster.yaml and the executor change (README, "Scaling out").
"""

from __future__ import annotations

import dagster as dg

from nostr_assets.settings import load_settings

_settings = load_settings()

ON_LAKE = _settings.warehouse == "ducklake"

# Processes that crawl and land one events run's hours at once.
EVENT_WRITERS = _settings.ducklake_writers if ON_LAKE else 1

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

# The file: steps in the run's own process. A lake: each step in a process of its own.
EXECUTOR = dg.multiprocess_executor if ON_LAKE else dg.in_process_executor
