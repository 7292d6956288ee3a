"""Dagster definitions of nostr-analytics: one module per asset family."""

import warnings

import dagster as dg

# Single-run backfills are how a range of hours becomes one run (and what the CLI's
# --partition-range requires); Dagster 1.13 still labels the `backfill_policy` parameter of
# `@asset` as beta. It is a deliberate choice here, not a pending migration.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
