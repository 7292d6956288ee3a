"""Where the network dashboard is written, and where it finds the country outlines it embeds."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from nostr_assets.defs.resources.fields import about
from nostr_assets.lib.reports.country_outlines import WORLD_ATLAS_FILE
from nostr_assets.settings import find_project_root


class DashboardResource(dg.ConfigurableResource):
    """The dashboard's HTML file, and the project folder whose node_modules/ holds world-atlas
    (installed by `npm ci`; the page draws a plain globe without it)."""

    path: str = Field(default="", description=about("NOSTR_DASHBOARD_PATH"))
    project_root: str = Field(default="", description="where node_modules/world-atlas is found")

    def _root(self) -> Path:
        return Path(self.project_root) if self.project_root else find_project_root()

    def html_path(self) -> Path:
        return Path(self.path) if self.path else self._root() / "data" / "reports" / "network.html"

    def world_atlas_path(self) -> Path:
        return self._root() / WORLD_ATLAS_FILE
