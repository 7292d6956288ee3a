"""The dbt project and nothing else: `dagster-dbt project prepare-and-package` imports it."""

import sys
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# dbt is installed beside this interpreter; a shell whose PATH lacks the virtualenv must still
# find it (dagster-dbt looks up plain "dbt" on PATH otherwise).
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
