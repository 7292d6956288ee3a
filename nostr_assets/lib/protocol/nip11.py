"""NIP-11 relay information documents, parsed leniently.

Relays that serve a document serve anything: wrong types, numbers as strings, HTML error
pages, megabytes of junk. ``parse_nip11`` keeps what is usable and says why the rest is not;
fetching a document is ``network/nip11_fetch.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_PUBKEY = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Nip11Info:
    """The fields the marts use; each is None when missing or of the wrong type."""

    name: str | None = None
    description: str | None = None
    pubkey: str | None = None
    contact: str | None = None
    software: str | None = None
    version: str | None = None
    supported_nips: list[int] | None = None
    max_limit: int | None = None
    max_message_length: int | None = None
    max_subscriptions: int | None = None
    payment_required: bool | None = None
    auth_required: bool | None = None
    restricted_writes: bool | None = None


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    # json.loads turns "\ud800" into a lone surrogate that no UTF-8 sink (DuckDB) accepts.
    return value.encode("utf-8", "replace").decode("utf-8")


def _count(value: object) -> int | None:
    """A non-negative integer, leniently: 500, 500.0 and "500" all count; True does not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value < 2**63:
        return value
    return None


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _nips(value: object) -> list[int] | None:
    if not isinstance(value, list):
        return None
    nips = (_count(item) for item in value)
    return [n for n in nips if n is not None]


def info_from_document(doc: dict[str, Any]) -> Nip11Info:
    """The lenient typed view of a document already known to be a JSON object."""
    limitation = doc.get("limitation")
    if not isinstance(limitation, dict):
        limitation = {}
    pubkey = _text(doc.get("pubkey"))
    pubkey = pubkey.lower() if pubkey and _PUBKEY.match(pubkey.lower()) else None
    return Nip11Info(
        name=_text(doc.get("name")),
        description=_text(doc.get("description")),
        pubkey=pubkey,
        contact=_text(doc.get("contact")),
        software=_text(doc.get("software")),
        version=_text(doc.get("version")),
        supported_nips=_nips(doc.get("supported_nips")),
        max_limit=_count(limitation.get("max_limit")),
        max_message_length=_count(limitation.get("max_message_length")),
        max_subscriptions=_count(limitation.get("max_subscriptions")),
        payment_required=_flag(limitation.get("payment_required")),
        auth_required=_flag(limitation.get("auth_required")),
        restricted_writes=_flag(limitation.get("restricted_writes")),
    )


def parse_nip11(raw: str | bytes) -> tuple[dict[str, Any] | None, Nip11Info, str | None]:
    """Parse a served document: ``(document, info, error)``; error is "not_json" or
    "not_an_object", and then document is None and every info field is None."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        # utf-8-sig writers put a BOM in front, which json.loads refuses.
        doc = json.loads(raw.lstrip("\ufeff"))
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." thousands deep
        return None, Nip11Info(), "not_json"
    if not isinstance(doc, dict):
        return None, Nip11Info(), "not_an_object"
    return doc, info_from_document(doc), None
