"""Which catalogued relays may be contacted: the address guard and the relay list applied to
the catalog.

Two rules decide. The address guard: relays on private, loopback or link-local addresses are
skipped unless NOSTR_ALLOW_PRIVATE_ADDRESSES allows them. Retirement: a relay that entered the
catalog from the relays file or NOSTR_RELAYS (source bootstrap or env) is fetched only while
the configuration still lists it, so taking a URL out of the list takes it out of the hourly
crawl; its rows stay. Relays discovered in events (nip65, contacts, hint) are not retired.
The catalog keeps a relay's first source, so a listed relay that events also mention retires
with the list: the operator's list governs the relays it added.
"""

from collections.abc import Collection

import dagster as dg
import duckdb

GUARD_SETTING = "NOSTR_ALLOW_PRIVATE_ADDRESSES"

_RELAYS_SQL = """
    select relay_url from raw.relay_catalog
    where ($guarded is null or is_guarded = $guarded)
      and ($listed is null or source not in ('bootstrap', 'env')
           or list_contains($listed::varchar[], relay_url))
    order by relay_url
"""


def _relays(
    conn: duckdb.DuckDBPyConnection, guarded: bool | None, listed: Collection[str] | None
) -> list[str]:
    params = {"guarded": guarded, "listed": None if listed is None else sorted(listed)}
    return [url for (url,) in conn.execute(_RELAYS_SQL, params).fetchall()]


def contactable_relays(
    conn: duckdb.DuckDBPyConnection, allow_private: bool, listed: Collection[str] | None
) -> list[str]:
    """Catalogued relay URLs to contact, sorted: guarded ones only when ``allow_private``;
    bootstrap and env ones only while in ``listed`` (the relay_sources resource's `listed()`).
    ``listed=None`` retires nothing: every catalogued relay, e.g. to read reports of the past.
    """
    if allow_private:
        return _relays(conn, None, listed)
    return _relays(conn, False, listed)


def guarded_relays_skipped(
    conn: duckdb.DuckDBPyConnection, allow_private: bool, listed: Collection[str] | None
) -> list[str]:
    """The relays `contactable_relays` leaves out only because of the address guard."""
    return [] if allow_private else _relays(conn, True, listed)


def retired_relays(conn: duckdb.DuckDBPyConnection, listed: Collection[str]) -> list[str]:
    """Catalogued bootstrap and env relays that the configuration no longer lists."""
    every = set(_relays(conn, None, None))
    return sorted(every - set(_relays(conn, None, listed)))


def report_guarded(context: dg.AssetExecutionContext, skipped: list[str]) -> dict[str, int]:
    """Name the relays the guard skipped in the run's log, with the setting that allows them;
    return the metadata that counts them (0 too: the UI plots the series)."""
    if skipped:
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        context.log.warning(
            f"{len(skipped)} relay(s) on private, loopback or link-local addresses skipped: "
            f"{', '.join(skipped[:10])}{more}; set {GUARD_SETTING}=true to contact them"
        )
    return {"guarded_relays_skipped": len(skipped)}
