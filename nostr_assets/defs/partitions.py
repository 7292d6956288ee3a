"""The one hourly partitioning every time-based asset shares, so partitions line up 1:1."""

import dagster as dg

from nostr_assets.settings import load_settings

# Partitions are UTC hours of `created_at` (events) or of observation (snapshots). The start,
# NOSTR_PARTITIONS_START, is the earliest hour a backfill can reach; its default is recent (see
# settings.py), because the UI lists every partition, filled or not. Loading every setting
# here, not only the start, makes a bad environment fail the code location's load with all
# its problems listed at once, whichever module imports this first.
hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=load_settings().partitions_start, timezone="UTC"
)
