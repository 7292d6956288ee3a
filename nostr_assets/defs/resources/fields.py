"""Resource fields described and checked by the settings table (nostr_assets/settings.py)."""

from __future__ import annotations

from typing import Any

from nostr_assets.settings import BY_NAME, SettingsError, problem


def about(name: str) -> str:
    """A field's description in the UI: its variable and meaning, from the settings table."""
    setting = BY_NAME[name]
    return f"{name}: {setting.meaning} ({setting.type})"


def check(name: str, value: Any) -> Any:
    """``value`` parsed by the parser of setting ``name``; one line naming it when refused."""
    try:
        return BY_NAME[name].parse(value if isinstance(value, str) else str(value))
    except ValueError as error:
        raise SettingsError([problem(name, value, str(error))]) from None
