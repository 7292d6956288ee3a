"""Past relay snapshots rebuilt from NIP-66 relay discovery events (kind 30166).

A monitor publishes a kind-30166 event, `d` tag = the relay's URL, when it found the relay
online; tags carry round-trip times (`rtt-open`, `rtt-read`), supported NIPs (`N`) and
requirements (`R`: `auth`, `payment`, `!payment` ...), and the content may hold the relay's
NIP-11 document. Our own probe cannot observe a past hour, but these events did: a snapshot
rebuilt from them says so (`observation_source = 'nip66'`, the monitor's pubkey) and claims no
more than the event does. A relay no monitor reported stays unknown, not unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nostr_assets.lib.protocol.event import Event
from nostr_assets.lib.protocol.nip11 import Nip11Info, parse_nip11
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, normalize_relay_url

RELAY_DISCOVERY_KIND = 30166


@dataclass(frozen=True)
class MonitorReport:
    relay_url: str
    monitor_pubkey: str
    event_id: str
    observed_at: int  # the event's created_at
    rtt_open_ms: float | None = None
    rtt_read_ms: float | None = None
    nip11_raw: str | None = None
    nip11_error: str | None = None
    info: Nip11Info = field(default_factory=Nip11Info)

    # Named as the raw.relay_snapshots columns they fill (warehouse/tables/relay_snapshots.py).
    observation_source = "nip66"
    # NIP-66 monitors publish a discovery event only for a relay they found online.
    is_reachable = True

    @property
    def nip11_info(self) -> Nip11Info:
        return self.info


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 <= number < 3_600_000 else None


def report_from_event(event: Event) -> MonitorReport | None:
    """The report a kind-30166 event makes, or None when it is not a usable one."""
    if event.kind != RELAY_DISCOVERY_KIND:
        return None
    first: dict[str, str] = {}
    nips: list[int] = []
    requirements: set[str] = set()
    for tag in event.tags:
        if len(tag) < 2:
            continue
        name, value = tag[0], tag[1]
        first.setdefault(name, value)
        if name == "N" and value.isdigit():
            nips.append(int(value))
        elif name == "R":
            requirements.add(value.strip().lower())
    try:
        relay_url = normalize_relay_url(first.get("d", ""))
    except InvalidRelayUrl:
        return None

    raw = event.content if event.content.strip() not in ("", "{}") else None
    document, info, error = parse_nip11(raw) if raw else (None, Nip11Info(), None)
    # Tags are the monitor's own findings; they fill what the document does not say.
    info = Nip11Info(
        **{
            **info.__dict__,
            "supported_nips": info.supported_nips or (sorted(set(nips)) or None),
            "auth_required": _requirement(info.auth_required, requirements, "auth"),
            "payment_required": _requirement(info.payment_required, requirements, "payment"),
        }
    )
    return MonitorReport(
        relay_url=relay_url,
        monitor_pubkey=event.pubkey,
        event_id=event.id,
        observed_at=event.created_at,
        rtt_open_ms=_number(first["rtt-open"]) if "rtt-open" in first else None,
        rtt_read_ms=_number(first["rtt-read"]) if "rtt-read" in first else None,
        nip11_raw=raw if document is not None or error else None,
        nip11_error=error,
        info=info,
    )


def _requirement(documented: bool | None, requirements: set[str], name: str) -> bool | None:
    if documented is not None:
        return documented
    if name in requirements:
        return True
    if f"!{name}" in requirements:
        return False
    return None


def latest_reports(events: list[Event]) -> dict[str, MonitorReport]:
    """Per relay URL, the latest report (ties: the lowest event id, so reruns agree)."""
    best: dict[str, MonitorReport] = {}
    for event in sorted(events, key=lambda e: (-e.created_at, e.id)):
        report = report_from_event(event)
        if report is not None and report.relay_url not in best:
            best[report.relay_url] = report
    return best
