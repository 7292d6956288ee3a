"""Which catalogued relays may be contacted: the address guard applied to the catalog."""

import duckdb

from nostr_assets.lib.warehouse import ensure_raw_tables


def contactable_relays(conn: duckdb.DuckDBPyConnection, allow_private: bool) -> list[str]:
    """Catalogued relay URLs, sorted; guarded ones only when configuration allows them."""
    ensure_raw_tables(conn)
    rows = conn.execute(
        "select relay_url from raw.relay_catalog where $allow or not is_guarded order by relay_url",
        {"allow": allow_private},
    ).fetchall()
    return [url for (url,) in rows]
