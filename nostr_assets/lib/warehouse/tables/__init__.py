"""Every raw table, one module each: its DDL (``TABLE``) beside the builder of its rows.

A module added here is a table: ``RAW_TABLES`` finds it, and the start-up schema check
creates it (or adds its new columns) in every warehouse.
"""

from __future__ import annotations

import importlib
import pkgutil

from nostr_assets.lib.warehouse.raw_table import RawTable


def _declared() -> dict[str, RawTable]:
    found: dict[str, RawTable] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        table = module.TABLE
        if table.name != module_info.name:
            raise RuntimeError(f"{module.__name__} declares table {table.name!r}: name it alike")
        found[table.name] = table
    return found


RAW_TABLES: dict[str, RawTable] = _declared()
