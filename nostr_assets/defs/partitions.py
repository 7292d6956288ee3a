"""The one hourly partitioning every time-based asset shares, so partitions line up 1:1."""

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from nostr_assets.settings import load_settings

# Partitions are UTC hours of `created_at` (events) or of observation (snapshots). The start,
# NOSTR_PARTITIONS_START, is the earliest hour a backfill can reach; its default is recent (see
# settings.py), because the UI lists every partition, filled or not. Loading every setting
# here, not only the start, makes a bad environment fail the code location's load with all
# its problems listed at once, whichever module imports this first.
T = TypeVar("T")

# The hourly schedule makes two runs of each closed hour (see automation.py): the events, and
# the observations of relays (snapshots, geolocations). An hourly raw asset says which it
# belongs to with this tag, so a new one is scheduled without editing a list of keys.
HOURLY_RUN_TAG = "nostr/hourly_run"
EVENTS_RUN = {HOURLY_RUN_TAG: "events"}
OBSERVATIONS_RUN = {HOURLY_RUN_TAG: "observations"}

hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=load_settings().partitions_start, timezone="UTC"
)


def single_run(decorator: Callable[..., T], **kwargs: Any) -> T:
    """``decorator(**kwargs)`` (``dg.asset``, ``dg.multi_asset``, ``dbt_assets``) whose backfills
    run a range of hours as one run: ``BackfillPolicy.single_run()``.

    One run per range is how the CLI's ``--partition-range`` works and how a week lands in
    seconds rather than paying a run's fixed cost per hour. Dagster 1.13 still labels the
    ``backfill_policy`` parameter as beta and warns when the decorator is made; that one
    warning is silenced here, for this call only, because the choice is deliberate.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning
        )
        return decorator(backfill_policy=dg.BackfillPolicy.single_run(), **kwargs)
