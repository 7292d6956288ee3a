"""When the dbt models rebuild by themselves: after the hour they read has landed, and only then.

Dagster's `AutomationCondition.eager()` does not fit an hourly pipeline that starts today:
- it considers only the latest hour of a partitioned model, so an hour fetched again later (the
  late-events sensor re-fetches the hour from 48 hours ago, a backfill fills last week) never
  reaches the hourly marts;
- `any_deps_missing` on a model that is not partitioned looks at every hour of its hourly
  parents, and hours nobody fetched (history before the install, a night the machine was off,
  an hour whose fetch failed) are missing forever, so the model never rebuilds.

So the hourly models follow their parents hour by hour, and the other models follow any hour
that lands while ignoring the hours that never did. An hour whose fetch failed records no
materialization (see `defs/events/assets.py`), so nothing downstream is requested for it.
"""

import dagster as dg

_updated = dg.AutomationCondition.any_deps_updated().since_last_handled()
_not_busy = ~dg.AutomationCondition.any_deps_in_progress() & ~dg.AutomationCondition.in_progress()

# An hour of a partitioned model, once the same hour of each parent has landed or will this tick.
HOURLY_MODEL = (_updated & ~dg.AutomationCondition.any_deps_missing() & _not_busy).with_label(
    "hour_landed"
)


def whole_model(hourly_parents: dg.AssetSelection) -> dg.AutomationCondition:
    """A model without partitions: after any parent updates, once its unpartitioned parents
    exist; the hours its hourly parents never filled do not count as missing."""
    # No first build on its own (eager's `newly_missing`): a model over staging views that no
    # hour has created yet would fail; the first hour that lands builds it.
    missing_parent = dg.AutomationCondition.any_deps_missing().ignore(hourly_parents)
    return (_updated & ~missing_parent & _not_busy).with_label("parents_landed")


# Our NIP-66 reports of an hour (publish/): once the hour's snapshots have landed, whatever the
# hour (a late rerun included, unlike eager's latest-hour-only). Geolocation only adds the g
# and l tags: a machine without a .mmdb, or an hour whose geolocation failed, still publishes.
_geolocations = dg.AssetSelection.assets(["raw", "relay_geolocations"])
PUBLISH_HOUR = (
    _updated & ~dg.AutomationCondition.any_deps_missing().ignore(_geolocations) & _not_busy
).with_label("snapshots_landed")

# A report over the marts (one unpartitioned file, drawn in a few seconds): redrawn after any
# mart it reads updates, hourly or not, once the marts have settled: not while one of them is
# being rebuilt or is requested in this very tick. A landed hour rebuilds the marts in waves (the
# hour's marts, then the catalog's, then those over the intermediate tables, a tick or more
# apart); waiting for the last wave draws the page once per hour instead of once per wave. No
# condition on missing marts: the report draws an empty state for a mart that is not built.
_deps_requested = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested())
REPORT = (_updated & _not_busy & ~_deps_requested).with_label("marts_settled")
