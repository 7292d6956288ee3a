"""raw.nip66_publish_results: what each relay answered to each event our monitor published."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from nostr_assets.lib.network.publisher import PublishResult
from nostr_assets.lib.warehouse.raw_table import RawTable

TABLE = RawTable(
    name="nip66_publish_results",
    grain="One row per snapshot hour, relay published to, and event sent.",
    time_column="snapshot_hour",
    columns="""
        snapshot_hour        timestamptz not null, -- the hour whose observations were sent
        publish_relay        varchar not null,     -- where the event was sent
        event_id             varchar not null,
        kind                 integer not null,     -- 30166 report, 10166, 10002 or 0
        subject_relay        varchar,              -- a 30166 report's d tag: the relay described
        answered_at          timestamptz not null,
        status               varchar not null,     -- accepted, duplicate, refused, no_answer,
                                                   -- unreachable
        message              varchar,              -- the relay's reason, or the error class
        primary key (snapshot_hour, publish_relay, event_id)
    """,
)


def publish_result_rows(
    hour: datetime, results: Iterable[PublishResult], subjects: dict[str, str]
) -> list[dict]:
    """One row per result; ``subjects`` maps a report's event id to the relay it describes."""
    return [
        {
            "snapshot_hour": hour,
            "publish_relay": r.relay_url,
            "event_id": r.event_id,
            "kind": r.kind,
            "subject_relay": subjects.get(r.event_id),
            "answered_at": datetime.fromtimestamp(r.answered_at, UTC),
            "status": r.status,
            "message": r.message,
        }
        for r in results
    ]
