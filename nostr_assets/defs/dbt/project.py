"""The dbt project and nothing else: `dagster-dbt project prepare-and-package` imports it."""

import sys
from pathlib import Path

from dagster_dbt import DbtProject

from nostr_assets.settings import find_project_root

# Beside the package in a checkout, or under NOSTR_PROJECT_ROOT (see settings.py).
DBT_PROJECT_DIR = find_project_root() / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` the manifest is rebuilt when the code location loads, so an edited model
# shows at the next reload; elsewhere (runs, tests, `dagster asset materialize`) the manifest
# `make prepare-dbt` built is read as it is.
dbt_project.prepare_if_dev()

# dbt is installed beside this interpreter; a shell whose PATH lacks the virtualenv must still
# find it (dagster-dbt looks up plain "dbt" on PATH otherwise).
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
