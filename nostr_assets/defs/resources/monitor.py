"""The NIP-66 monitor's identity and where it publishes: strictly opt-in.

The secret key is bound with ``dg.EnvVar``, unlike every other field (see __init__.py): the
UI then shows the variable's name, never its value, and the run reads it from its own
environment. It is parsed only when something is about to be signed, and appears nowhere but
in ``key()``'s return value, whose repr is the public key.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from nostr_assets.defs.resources.fields import about
from nostr_assets.lib.protocol.keys import InvalidSecretKey, MonitorKey, parse_secret_key
from nostr_assets.settings import SettingsError, parse_relay_urls

KEY_VARIABLE = "NOSTR_MONITOR_SECRET_KEY"
RELAYS_VARIABLE = "NOSTR_MONITOR_PUBLISH_RELAYS"


class NostrMonitorResource(dg.ConfigurableResource):
    """Who signs our NIP-66 reports, and which relays receive them. Empty: nothing is sent."""

    # repr=False: a resource's repr (logs, tracebacks, debuggers) must not carry the key.
    secret_key: str = Field(default="", description=about(KEY_VARIABLE), repr=False)
    publish_relays: str = Field(default="", description=about(RELAYS_VARIABLE))

    def why_disabled(self) -> str | None:
        """Why nothing is published, or None when everything needed is set."""
        missing = [
            name
            for name, value in (
                (KEY_VARIABLE, self.secret_key),
                (RELAYS_VARIABLE, self.publish_relays),
            )
            if not value.strip()
        ]
        if missing:
            return f"{' and '.join(missing)} not set: publishing is opt-in (see the README)"
        return None

    def enabled(self) -> bool:
        return self.why_disabled() is None

    def key(self) -> MonitorKey:
        try:
            return parse_secret_key(self.secret_key)
        except InvalidSecretKey as error:
            # The reason only: the value is a secret, even when it is a wrong one.
            raise SettingsError([f"{KEY_VARIABLE}=<hidden>: {error}"]) from None

    def relays(self) -> list[str]:
        return list(parse_relay_urls(self.publish_relays))
