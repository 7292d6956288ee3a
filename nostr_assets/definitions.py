"""The code location: every asset, check, job, schedule, sensor and resource of nostr-analytics,
found in the `defs/` folder. A new module there is picked up without editing a list."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
