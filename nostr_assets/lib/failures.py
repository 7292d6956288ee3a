"""Every failure the crawler records, named once.

The warehouse keeps why things failed in a few columns: ``error_class`` (why a relay's window
or probe ended early), ``nip11_error`` (why its NIP-11 document is missing), ``guard_reason``
(why the address guard will not contact it). Each column takes its values from one class
below and from nowhere else, so a value means the same thing in every table and a mart can
group by it. The dbt staging models test each column with ``accepted_values`` generated from
this module (``python -m nostr_assets.lib.failures`` writes dbt_project/macros/failures.sql).

The refusals that are counted rather than stored (frames, events and URLs refused, by
reason) are here too, so the run metadata and the logs speak the same language.

Pure: no Dagster, no I/O.
"""

from __future__ import annotations

import sys
from enum import StrEnum


class ErrorClass(StrEnum):
    """Why a relay's window (raw.relay_fetch_stats) or probe (raw.relay_snapshots) ended early.

    Also the network half of ``Nip11Failure``: an HTTP fetch fails for the same reasons.
    """

    # Before any connection.
    INVALID_URL = "invalid_url"  # not a ws(s):// relay URL (the reason is in the message)
    DNS_FAILED = "dns_failed"  # no address, or no DNS answer in time
    REFUSED_ADDRESS = "refused_address"  # the address guard refused every address
    # Connecting.
    CONNECTION_REFUSED = "connection_refused"
    TIMEOUT_CONNECT = "timeout_connect"  # no TCP, TLS and websocket handshake in time
    TLS_FAILED = "tls_failed"
    HANDSHAKE_FAILED = "handshake_failed"  # the HTTP upgrade was refused or malformed
    REDIRECT_REFUSED = "redirect_refused"  # a redirect, never followed (it could go anywhere)
    PROTOCOL_ERROR = "protocol_error"  # the server broke HTTP
    OS_ERROR = "os_error"  # another socket error (unreachable network, reset)
    # Connected.
    TIMEOUT_IDLE = "timeout_idle"  # silent for longer than the idle timeout
    TIMEOUT_TOTAL = "timeout_total"  # the whole window or probe took too long
    CONNECTION_CLOSED = "connection_closed"  # closed by the relay or the network mid-way
    TOO_LARGE = "too_large"  # one frame past the largest accepted
    BYTE_BUDGET = "byte_budget"  # the window's (or the crawl's) byte budget is spent
    MAX_EVENTS = "max_events"  # the window's event cap is reached
    CLOSED_BY_RELAY = "closed_by_relay"  # CLOSED other than a rate limit waited out
    INTERNAL_ERROR = "internal_error"  # a bug of ours, recorded so the other relays go on


class Nip11Failure(StrEnum):
    """Why raw.relay_snapshots has no NIP-11 document for a relay (``nip11_error``)."""

    # The fetch failed as a connection does (see ErrorClass).
    INVALID_URL = ErrorClass.INVALID_URL.value
    DNS_FAILED = ErrorClass.DNS_FAILED.value
    REFUSED_ADDRESS = ErrorClass.REFUSED_ADDRESS.value
    CONNECTION_REFUSED = ErrorClass.CONNECTION_REFUSED.value
    TIMEOUT_TOTAL = ErrorClass.TIMEOUT_TOTAL.value
    TLS_FAILED = ErrorClass.TLS_FAILED.value
    PROTOCOL_ERROR = ErrorClass.PROTOCOL_ERROR.value
    CONNECTION_CLOSED = ErrorClass.CONNECTION_CLOSED.value
    OS_ERROR = ErrorClass.OS_ERROR.value
    # The answer was refused.
    HTTP_STATUS = "http_status"  # not 200 (the status is in nip11_status_code); not followed
    TOO_LARGE = ErrorClass.TOO_LARGE.value  # past NOSTR_NIP11_MAX_KB, as sent or decoded
    BAD_ENCODING = "bad_encoding"  # a compressed body that does not decode
    UNSUPPORTED_ENCODING = "unsupported_encoding"  # a compression we cannot decode bounded
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"  # JSON, but not an object


class GuardReason(StrEnum):
    """Why the address guard will not contact an address (raw.relay_catalog.guard_reason)."""

    UNSPECIFIED = "unspecified"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link_local"
    MULTICAST = "multicast"
    PRIVATE = "private"
    RESERVED = "reserved"
    INVALID_URL = ErrorClass.INVALID_URL.value  # the catalogued URL no longer normalises
    NOT_AN_ADDRESS = "not_an_address"  # classify_address was given something else (a bug)


class UrlRefusal(StrEnum):
    """Why ``normalize_relay_url`` refused a candidate relay URL (counted, never stored)."""

    NOT_A_STRING = "not_a_string"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    BAD_CHARACTERS = "bad_characters"
    BAD_SCHEME = "bad_scheme"
    HAS_CREDENTIALS = "has_credentials"
    NO_HOST = "no_host"
    BAD_HOST = "bad_host"
    BAD_PORT = "bad_port"
    # Discovery: past NOSTR_CATALOG_URLS_PER_EVENT, not even normalised.
    OVER_EVENT_LIMIT = "over_event_limit"


class EventRefusal(StrEnum):
    """Why an event was refused (counted by relay and hour: invalid_ids, invalid_signatures,
    invalid_other, and by reason in the run's metadata)."""

    NOT_JSON = "not_json"  # the event text is not JSON at all
    NOT_AN_OBJECT = "not_an_object"  # JSON, but not an object
    MISSING_FIELD = "missing_field"  # one of id/pubkey/created_at/kind/tags/content/sig
    BAD_HEX = "bad_hex"  # id/pubkey/sig has characters other than lowercase hex
    BAD_LENGTH = "bad_length"  # id/pubkey not 64 hex characters, sig not 128
    BAD_CREATED_AT = "bad_created_at"  # not an integer in 0..2**63-1
    BAD_KIND = "bad_kind"  # not an integer
    KIND_OUT_OF_RANGE = "kind_out_of_range"  # an integer outside 0..65535
    BAD_TAGS = "bad_tags"  # not a list of lists of strings
    BAD_CONTENT = "bad_content"  # not a string
    LONE_SURROGATE = "lone_surrogate"  # a string that cannot be encoded as UTF-8
    ID_MISMATCH = "id_mismatch"  # the id is not the sha256 of the canonical serialization
    INVALID_PUBKEY = "invalid_pubkey"  # not the x coordinate of a point on secp256k1
    BAD_SIGNATURE = "bad_signature"  # the BIP-340 signature does not verify
    # Not the event's fault: the crawl holds as many events as it may (the window is cut).
    OVER_BUDGET = "over_budget"


class FrameRefusal(StrEnum):
    """Why a relay's frame was not understood (counted in bad_frames)."""

    NOT_JSON = "not_json"
    NOT_AN_ARRAY = "not_an_array"
    BAD_SHAPE = "bad_shape"  # a known message with the wrong elements
    UNKNOWN_TYPE = "unknown_type"  # a message type NIP-01 does not define
    TOO_LARGE = ErrorClass.TOO_LARGE.value  # past the largest frame accepted


# The columns of the warehouse that hold failures, and the vocabulary of each.
STORED: dict[str, type[StrEnum]] = {
    "error_classes": ErrorClass,
    "nip11_failures": Nip11Failure,
    "guard_reasons": GuardReason,
}


def dbt_macros() -> str:
    """dbt_project/macros/failures.sql: one macro per stored vocabulary, for accepted_values."""
    lines = [
        "{# Generated by `python -m nostr_assets.lib.failures`: do not edit. The values of the",
        "   failure columns, from nostr_assets/lib/failures.py, for accepted_values tests. #}",
    ]
    for name, vocabulary in STORED.items():
        values = [f"        '{member.value}'," for member in vocabulary]
        lines += ["", f"{{% macro {name}() %}}", "    {{ return(["]
        lines += [*values, "    ]) }}", "{% endmacro %}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(dbt_macros())
