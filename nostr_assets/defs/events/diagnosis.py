"""What most likely went wrong when a fetch reached no relay, in words a user can act on."""

from collections import Counter

from nostr_assets.lib.failures import ErrorClass

# Failures that say nothing left this machine: no DNS answer, no TCP or TLS connection.
NETWORK_ERRORS = frozenset(
    {
        ErrorClass.DNS_FAILED,
        ErrorClass.TIMEOUT_CONNECT,
        ErrorClass.CONNECTION_REFUSED,
        ErrorClass.OS_ERROR,
        ErrorClass.TLS_FAILED,
    }
)
# The relay answered and said no: an HTTP refusal of the websocket, CLOSED, a redirect refused.
REFUSALS = frozenset(
    {ErrorClass.HANDSHAKE_FAILED, ErrorClass.CLOSED_BY_RELAY, ErrorClass.REDIRECT_REFUSED}
)


def explain_unreached(errors: Counter, hours: list[str]) -> str:
    """One paragraph for an hour (or hours) that no relay answered: the likely cause from the
    relays' error classes, and what to do about it."""
    total = sum(errors.values())
    counts = ", ".join(f"{n} {name}" for name, n in errors.most_common())
    where = hours[0] if len(hours) == 1 else f"{len(hours)} hours ({', '.join(hours[:3])} ...)"
    head = f"No relay answered for {where}; relay failures: {counts or 'none recorded'}."
    if total and errors.keys() <= NETWORK_ERRORS:
        cause = (
            "Likely cause: no network. Every relay failed before a websocket opened (DNS or "
            "connect). Check this machine's internet connection, DNS and firewall, then "
            "materialize the hour again."
        )
    elif total and errors.keys() <= {"refused_address"}:
        cause = (
            "Likely cause: private addresses refused. Every relay resolves to a private, "
            "loopback or link-local address, which the crawler never contacts by default. Set "
            "NOSTR_ALLOW_PRIVATE_ADDRESSES=true if these are your own relays."
        )
    elif total and errors.keys() <= REFUSALS | NETWORK_ERRORS and errors.keys() & REFUSALS:
        cause = (
            "Likely cause: every relay that answered refused the request (authentication, "
            "payment or restriction). Add relays that serve reads freely (NOSTR_RELAYS or "
            "data/relays.txt)."
        )
    else:
        cause = (
            "Likely cause: the relays are down or too slow for the timeouts "
            "(NOSTR_CONNECT_TIMEOUT, NOSTR_IDLE_TIMEOUT). Check the per-relay rows in "
            "raw.relay_fetch_stats for this hour."
        )
    return f"{head} {cause} The per-relay fetch statistics of the hour are kept."
