"""publish/nip66_relay_reports end to end, with real parts: relays A and B are probed and
geolocated for the latest closed hour (real nostr-relay, real .mmdb), then our reports go to a
third real relay, are read back by author and checked tag by tag, signature and all; our own
NIP-66 reader turns them back into the snapshot rows they came from; a second run replaces
nothing; without a key nothing is sent; and the key shows up nowhere."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest
from dagster_env import LOOPBACK_AS, graph_resources, python_assets, write_test_geoip
from relays import start_relay
from websockets.asyncio.client import connect

from nostr_assets.defs.resources.monitor import NostrMonitorResource
from nostr_assets.lib.protocol.event import EventVerifier, decode_event
from nostr_assets.lib.protocol.keys import bech32_encode, parse_secret_key
from nostr_assets.lib.protocol.nip66 import report_from_event
from nostr_assets.lib.warehouse.tables.relay_snapshots import snapshot_row

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SECRET = "3c" * 32
KEY = parse_secret_key(SECRET)
NSEC = bech32_encode("nsec", bytes.fromhex(SECRET))
# The columns a NIP-66 report carries (the rest: our probe's own detail).
REPORTED = (
    "relay_url",
    "is_reachable",
    "nip11_raw",
    "relay_name",
    "software",
    "supported_nips",
    "payment_required",
    "auth_required",
)
# Where a document is silent on auth, the R tag carries what the probe saw, and the reader
# fills auth_required from it: the probe row's requires_auth_for_read.


def closed_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def materialize(resources, selection, key):
    return dg.materialize(
        python_assets(), selection=selection, partition_key=key, resources=resources
    )


# The reports and the table of answers are one step: selecting one selects both.
PUBLISH = dg.AssetSelection.assets(
    ["publish", "nip66_relay_reports"]
).required_multi_asset_neighbors()


def reports_metadata(result) -> dict:
    (event,) = [
        m
        for m in result.asset_materializations_for_node("nip66_relay_reports")
        if m.asset_key == dg.AssetKey(["publish", "nip66_relay_reports"])
    ]
    return {k: v.value for k, v in event.metadata.items()}


async def read_back(url: str) -> list:
    async with connect(url) as ws:
        await ws.send(json.dumps(["REQ", "m", {"authors": [KEY.pubkey]}]))
        found = []
        while (frame := json.loads(await ws.recv()))[0] != "EOSE":
            found.append(decode_event(json.dumps(frame[2])))
    return found


def test_publish_round_trip_and_rerun(tmp_path, relay_a, relay_b, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    target = start_relay(tmp_path / "target")
    try:
        database = tmp_path / "nostr.duckdb"
        city, asn = write_test_geoip(tmp_path)
        resources = graph_resources(database, [relay_a.url, relay_b.url], city, asn)
        hour = closed_hour()
        key = hour.strftime("%Y-%m-%d-%H:%M")
        dg.materialize(python_assets(), selection="raw/relay_catalog", resources=resources)
        materialize(resources, "raw/relay_snapshots", key)
        materialize(resources, "raw/relay_geolocations", key)

        # Without a key, nothing is sent, and the materialization says why.
        quiet = reports_metadata(materialize(resources, PUBLISH, key))
        assert quiet["published"] == 0
        assert "NOSTR_MONITOR_SECRET_KEY" in quiet["why_not_published"]
        assert asyncio.run(read_back(target.url)) == []

        resources["monitor"] = NostrMonitorResource(secret_key=NSEC, publish_relays=target.url)
        first = materialize(resources, PUBLISH, key)
        assert reports_metadata(first)["published"] == 2
        assert reports_metadata(first)["status/accepted"] == 5  # 2 reports, 10166, 0, 10002

        stored = asyncio.run(read_back(target.url))
        assert sorted(e.kind for e in stored) == [0, 10002, 10166, 30166, 30166]
        assert all(EventVerifier().reject_reason(e) is None for e in stored)
        reports = {e.tags[0][1]: e for e in stored if e.kind == 30166}
        assert set(reports) == {relay_a.url, relay_b.url}
        with duckdb.connect(str(database), read_only=True) as conn:
            probes = {
                row[0]: row
                for row in conn.execute(
                    f"select {', '.join(REPORTED[:-1])}, "
                    "coalesce(auth_required, requires_auth_for_read), rtt_open_ms, rtt_read_ms "
                    "from raw.relay_snapshots where snapshot_hour = $1",
                    [hour],
                ).fetchall()
            }
        for url, report_event in reports.items():
            tags = report_event.tags
            assert tags[0] == ["d", url] and ["n", "clearnet"] in tags
            assert ["l", "IS", "ISO-3166-1"] in tags
            assert ["l", str(LOOPBACK_AS["asn"]), "IANA-asn"] in tags
            assert any(t[0] == "g" and len(t[1]) == 5 for t in tags)
            assert ["N", "1"] in tags and ["N", "11"] in tags and ["R", "!auth"] in tags
            assert all(isinstance(v, str) for t in tags for v in t)
            # Read back by our own NIP-66 reader: the same row as the snapshot it came from.
            report = report_from_event(report_event)
            row = snapshot_row(hour, report)
            assert tuple(row[c] for c in REPORTED) == probes[url][: len(REPORTED)]
            rtt_open, rtt_read = probes[url][len(REPORTED) :]
            assert (row["rtt_open_ms"], row["rtt_read_ms"]) == (round(rtt_open), round(rtt_read))

        # A rerun of the hour sends the very same events: duplicates, nothing new.
        again = materialize(resources, PUBLISH, key)
        assert reports_metadata(again)["status/duplicate"] == 5
        assert len(asyncio.run(read_back(target.url))) == 5

        # The key is nowhere: not in the warehouse, the metadata or the run's events.
        with duckdb.connect(str(database), read_only=True) as conn:
            rows = conn.execute("select * from raw.nip66_publish_results").fetchall()
            assert {r[6] for r in rows} == {"duplicate"} and len(rows) == 5
        # Everything the runs logged, through Python's logging and Dagster's own handler.
        printed = capfd.readouterr()
        log = caplog.text + printed.out + printed.err
        logged = repr([e for run in (first, again) for e in run.all_events]) + log
        assert KEY.npub in log  # the run's log names the monitor by its public key
        stored = database.read_bytes()
        for secret in (SECRET, NSEC):
            assert secret not in logged and secret not in repr(rows)
            assert secret.encode() not in stored  # as text
        assert bytes.fromhex(SECRET) not in stored  # as the raw key
    finally:
        target.stop()


def test_automation_publishes_an_hour_once_its_snapshots_land():
    """Any hour whose snapshots land (a late rerun too, not only the latest), with or without
    geolocation (a machine without a .mmdb still publishes); once per landing."""
    from nostr_assets.definitions import defs as load_definitions

    defs = load_definitions()
    publish_key = dg.AssetKey(["publish", "nip66_relay_reports"])
    late_hour = (closed_hour() - timedelta(hours=5)).strftime("%Y-%m-%d-%H:%M")
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        instance.report_runless_asset_event(
            dg.AssetMaterialization(["raw", "relay_snapshots"], partition=late_hour)
        )
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        requested = result.get_requested_partitions(publish_key)
        assert requested == {late_hour}
        for key in (publish_key, dg.AssetKey(["raw", "nip66_publish_results"])):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=late_hour))
        again = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert again.get_requested_partitions(publish_key) == set()
