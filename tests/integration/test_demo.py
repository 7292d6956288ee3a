"""The offline demo end to end (`python -m nostr_assets.demo --no-ui`, what `make demo` runs
before serving the UI), against a temporary folder.

Protects: the demo's relays serve what the generator put on them and the warehouse gets every
event of every relay (exactly: each relay's sightings are its events); the marts come out
non-empty (zaps with sats, long-form, top reactions, replication, coverage, relay health from
NIP-66 snapshots); each relay runs on a loopback address of its own, and the demo's GeoIP
database places it (the probed hour's raw.relay_geolocations, fct_relays_by_country: the
dashboard map's bubbles), said to be invented in the output and on the dashboard page; the
dashboard is written when the code location has it; the relays are stopped afterwards, on
success and when the demo is stopped with SIGTERM while dbt runs (no process left, ports
closed); and nothing of the user's own warehouse or Dagster instance is touched.

The run covers 6 hours rather than the default 48: Dagster records a planned and a done
event per hour and asset, which is most of what the hours cost; `make demo` measures the 48.
The SIGTERM case runs beside it, in a folder of its own: much of each run is waiting (for
the relays' capability answers, for dbt to start, for the backfill to stop), so the two
overlap on two cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from nostr_assets.settings import find_project_root

pytestmark = pytest.mark.integration

ROOT = find_project_root()
HOURS = 6
# dbt as dagster-dbt runs it (`dbt --version`, then `dbt build`): the executable beside Python.
DBT = str(Path(sys.executable).with_name("dbt"))
MARTS = (
    "fct_events_hourly",
    "fct_active_pubkeys_daily",
    "fct_zaps_daily",
    "fct_long_form_daily",
    "fct_top_reactions",
    "fct_event_replication",
    "fct_relay_coverage",
    "fct_relay_health_hourly",
    "dim_relays",
)


def demo_command(folder: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nostr_assets.demo", "--no-ui", "--dir", str(folder), *extra]


def user_state() -> dict[str, tuple[int, int] | None]:
    """Size and modification time of every file of the user's own warehouse and instance."""
    paths = [ROOT / "data" / "nostr.duckdb", ROOT / "data" / "nostr.duckdb.wal"]
    paths += sorted((ROOT / "data" / "dagster_home").rglob("*"))
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None for p in paths
    }


def processes_mentioning(folder: Path) -> list[str]:
    """Command lines of live processes that name ``folder`` (relays run from inside it)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in text:
            found.append(text)
    return found


def process_group(pgid: int) -> list[str]:
    """Command lines of live processes in process group ``pgid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append((stat.parent / "cmdline").read_text().replace("\0", " "))
        except (OSError, IndexError, ValueError):
            continue
    return found


def wait_for_dbt(pgid: int, timeout: float = 60.0) -> list[str]:
    """The command lines of the dbt processes in process group ``pgid``, once there is one
    (dagster-dbt starts `dbt --version` when the step starts, then `dbt build`)."""
    deadline = time.monotonic() + timeout
    while not (found := [c for c in process_group(pgid) if DBT in c]):
        if time.monotonic() > deadline:
            return []
        time.sleep(0.1)
    return found


def assert_relays_gone(folder: Path, relays: list[dict]) -> None:
    deadline = time.monotonic() + 10
    while processes_mentioning(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(folder) == []
    for relay in relays:
        with pytest.raises(ProcessLookupError):
            os.kill(relay["pid"], 0)
        with socket.socket() as sock:
            assert sock.connect_ex((relay["host"], relay["port"])) != 0, relay["url"]


def query(database: Path, sql: str, parameters: list | None = None) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql, parameters).fetchall()


@dataclass
class Interrupted:
    """What ``interrupt_demo`` saw of a demo it stopped with SIGTERM."""

    folder: Path
    before: list[str] = field(default_factory=list)  # its output up to the SIGTERM
    summary: dict = field(default_factory=dict)  # demo.json
    dbt: list[str] = field(default_factory=list)  # dbt in the backfill's group at the SIGTERM
    relays: list[str] = field(default_factory=list)  # processes naming the folder then
    after: str = ""  # its output after the SIGTERM
    returncode: int | None = None


def interrupt_demo(folder: Path) -> Interrupted:
    """Run the demo for one hour (what is stopped does not depend on how many) and send it
    SIGTERM once dbt runs in the backfill's process group; record what was seen."""
    seen = Interrupted(folder)
    process = subprocess.Popen(
        demo_command(folder, "--hours", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            seen.before.append(line)
            if "dbt models" in line:
                break
        else:
            return seen  # it ended before dbt: the test shows its output
        seen.summary = json.loads((folder / "demo.json").read_text())
        # dbt, not just the dbt step: a fixed 2 s sleep after the line was too short on a busy
        # machine (Dagster was still recording the run's planned events)
        seen.dbt = wait_for_dbt(seen.summary["backfill_pid"])
        seen.relays = processes_mentioning(folder)
        process.send_signal(signal.SIGTERM)
        seen.after = process.stdout.read()
        seen.returncode = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return seen


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Iterator[Future[Interrupted]]:
    """The SIGTERM case, driven in a thread of its own from the moment it is requested."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(interrupt_demo, tmp_path_factory.mktemp("interrupted"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory, interrupted):
    # `interrupted` is requested first so that the SIGTERM case runs beside this demo
    folder = tmp_path_factory.mktemp("demo")
    before = user_state()
    done = subprocess.run(
        demo_command(folder, "--hours", str(HOURS)),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((folder / "demo.json").read_text())
    return folder, summary, done.stdout, before


def test_prints_its_progress(demo):
    _, _, output, _ = demo
    for line in (
        "4 relays started",
        f"{HOURS} hours backfilled",
        "relay snapshots:",
        "relays placed by a demo GeoIP database (invented locations)",
        "4 relays geolocated in DE, FI, JP, US",
        "marts built",
        "relays stopped",
    ):
        assert line in output


def test_the_warehouse_holds_every_event_of_every_relay(demo):
    _, summary, _, _ = demo
    database = Path(summary["warehouse"])
    held = dict(
        query(database, "select relay_url, count(*) from raw.event_relay_sightings group by 1")
    )
    assert held == {relay["url"]: relay["events"] for relay in summary["relays"]}
    assert query(database, "select count(*) from raw.nostr_events") == [(summary["events"],)]
    caps = {relay["max_limit"] for relay in summary["relays"]}
    assert len(caps) == 4 and min(caps) < 50  # paging past small caps was needed


def test_the_marts_are_not_empty(demo):
    _, summary, _, _ = demo
    database = Path(summary["warehouse"])
    for mart in MARTS:
        assert query(database, f"select count(*) from main.{mart}")[0][0] > 0, mart
    sats, zaps = query(database, "select sum(claimed_amount_sats), sum(zaps) from fct_zaps_daily")[
        0
    ]
    assert sats > 0 and zaps > 0
    assert query(database, "select sum(articles) from fct_long_form_daily")[0][0] > 0
    sources = dict(
        query(database, "select observation_source, count(*) from raw.relay_snapshots group by 1")
    )
    # every past hour from the monitors' NIP-66 reports, the latest probed
    assert sources["nip66"] >= (HOURS - 1) * 4 and sources["probe"] == 4


def test_the_demo_geoip_database_places_each_relay(demo):
    _, summary, _, _ = demo
    database = Path(summary["warehouse"])
    hosts = [relay["host"] for relay in summary["relays"]]
    assert hosts == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]  # Linux: all of lo
    assert summary["geoip"]["invented"] is True
    probed = query(
        database,
        "select max(snapshot_hour) from raw.relay_snapshots where observation_source = 'probe'",
    )[0][0]
    located = query(
        database,
        "select relay_url, ip, country_code, city, asn from raw.relay_geolocations "
        "where snapshot_hour = $1 order by relay_url",
        [probed],
    )
    assert located == [
        (r["url"], r["host"], r["place"]["country_code"], r["place"]["city"], r["place"]["asn"])
        for r in sorted(summary["relays"], key=lambda r: r["url"])
    ]
    by_country = dict(
        query(database, "select country_code, reachable_relays from main.fct_relays_by_country")
    )
    assert by_country == {"DE": 1, "FI": 1, "JP": 1, "US": 1}


def test_the_dashboard_is_written_and_says_the_places_are_invented(demo):
    folder, _, _, _ = demo
    page = (folder / "network.html").read_text()
    assert 'id="demo-invented-locations"' in page
    assert "relay locations are invented" in page


def test_relays_are_stopped_afterwards(demo):
    folder, summary, _, _ = demo
    assert_relays_gone(folder, summary["relays"])


def test_the_users_own_warehouse_and_instance_are_untouched(demo):
    _, summary, _, before = demo
    assert user_state() == before
    assert Path(summary["warehouse"]).parent != ROOT / "data"
    assert Path(summary["dagster_home"]).is_relative_to(Path(summary["warehouse"]).parent)


def test_sigterm_mid_way_stops_everything(interrupted):
    """SIGTERM while dbt runs: the backfill's process group (Dagster, dbt) and the relays go."""
    seen = interrupted.result(timeout=240)
    assert seen.before and "dbt models" in seen.before[-1], "".join(seen.before)
    assert seen.dbt, "no dbt process in the backfill's group"
    assert seen.relays
    assert seen.returncode == 130, seen.after
    assert "relays stopped" in seen.after
    assert_relays_gone(seen.folder, seen.summary["relays"])
    assert process_group(seen.summary["backfill_pid"]) == []  # Dagster and dbt
