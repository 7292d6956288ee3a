"""Country outlines for the dashboard's map: world-atlas's TopoJSON, read from node_modules.

world-atlas 2.0.2 (ISC) packages Natural Earth's 1:110m admin-0 countries as TopoJSON, 108 kB:
small enough to embed in the page, so the map needs no tile server. `npm ci` installs it (see
package.json); without it the map draws on a plain globe and the page says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORLD_ATLAS_FILE = Path("node_modules") / "world-atlas" / "countries-110m.json"
CREDIT = "Natural Earth, via world-atlas (ISC)"
# The TopoJSON object holding one geometry per country.
COUNTRIES_OBJECT = "countries"


@dataclass(frozen=True)
class CountryOutlines:
    """TopoJSON with a ``countries`` object, or the reason there is none."""

    topology: dict[str, Any] | None
    why_missing: str = ""


def read_country_outlines(path: Path) -> CountryOutlines:
    """The TopoJSON at ``path``; a missing, unreadable or foreign file is a reason, never an
    error: the dashboard is still worth drawing without outlines."""
    try:
        topology = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return CountryOutlines(None, f"{path} is absent (run `npm ci` to install world-atlas)")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return CountryOutlines(None, f"{path} is unreadable ({error.__class__.__name__})")
    is_topology = isinstance(topology, dict) and topology.get("type") == "Topology"
    objects = topology.get("objects") if is_topology else None
    if not isinstance(objects, dict) or COUNTRIES_OBJECT not in objects:
        return CountryOutlines(None, f"{path} is not world-atlas's countries TopoJSON")
    return CountryOutlines(topology)
