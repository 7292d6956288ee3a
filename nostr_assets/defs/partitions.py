"""The one hourly partitioning every time-based asset shares, so partitions line up 1:1."""

import dagster as dg

# Partitions are UTC hours of `created_at` (events) or of observation (snapshots). The start is
# the earliest hour a backfill can reach; Nostr's busy era begins well after it.
hourly_partitions = dg.HourlyPartitionsDefinition(start_date="2023-01-01-00:00", timezone="UTC")
