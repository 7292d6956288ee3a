"""dead_run_sensor against a real run killed with SIGKILL, on a real instance with the repo's
dagster.yaml (pool `duckdb` limited to 1, op granularity).

Protects issue 7's "recovery without a person": a run killed while it holds the `duckdb` pool
slot is failed with a clear message and its slot freed by one sensor tick, so the next CLI
materialisation runs at once instead of waiting forever; a live run holding the slot is left
alone; a pid is judged dead when its process is gone, a zombie, or a later process reusing it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster_env import graph_resources

from nostr_assets.defs.recovery import process_alive
from nostr_assets.defs.relays.catalog import relay_catalog

pytestmark = pytest.mark.slow  # runs and kills Dagster run processes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = PROJECT_ROOT / "data" / "dagster_home" / "dagster.yaml"
EVENT_TABLES = "raw/nostr_events,raw/event_relay_sightings,raw/relay_fetch_stats"
# An hour just closed: inside the partitions whatever NOSTR_PARTITIONS_START defaults to.
PARTITION = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%d-%H:00")
DEFINITIONS = "nostr_assets.definitions"
NOTHING_TO_DO = "every started or canceling run has a live process"


@dataclass
class Setup:
    instance: dg.DagsterInstance
    env: dict[str, str]
    logs: Path


@pytest.fixture(scope="module")
def defs():
    from nostr_assets.definitions import defs as load_definitions

    return load_definitions()


@pytest.fixture
def setup(tmp_path) -> Iterator[Setup]:
    """A DAGSTER_HOME with the repo's dagster.yaml, and a warehouse whose catalog holds one relay
    that accepts TCP but never answers the websocket handshake: fetching an hour from it holds
    the `duckdb` slot for the crawler's connect timeout (10 s)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(16)  # never accepted: the kernel completes the TCP handshake, nobody answers
    url = f"ws://127.0.0.1:{stall.getsockname()[1]}"
    database = tmp_path / "nostr.duckdb"
    dg.materialize([relay_catalog], resources=graph_resources(database, [url]))
    relays_file = tmp_path / "relays.txt"
    relays_file.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOSTR_")}
    env |= {
        "DAGSTER_HOME": str(home),
        "NOSTR_DUCKDB_PATH": str(database),
        "NOSTR_RELAYS": url,
        "NOSTR_RELAYS_FILE": str(relays_file),
        "NOSTR_ALLOW_PRIVATE_ADDRESSES": "true",
    }
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield Setup(instance, env, tmp_path)
    stall.close()


def materialize(setup: Setup, name: str, *args: str) -> subprocess.Popen:
    """`dagster asset materialize` in its own process group, as a user or `make run` starts it."""
    with (setup.logs / f"{name}.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dagster", "asset", "materialize", "-m", DEFINITIONS, *args],
            cwd=PROJECT_ROOT,
            env=setup.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def claimed_slots(instance: dg.DagsterInstance) -> list:
    return instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots


def start_slot_holder(setup: Setup) -> tuple[subprocess.Popen, str]:
    """A real run fetching an hour from the stalled relay; returns once it holds the slot."""
    process = materialize(setup, "holder", "--select", EVENT_TABLES, "--partition", PARTITION)
    deadline = time.monotonic() + 40
    while not (slots := claimed_slots(setup.instance)):
        if process.poll() is not None or time.monotonic() > deadline:
            kill(process)
            log = (setup.logs / "holder.log").read_text()[-3000:]
            pytest.fail(f"the run never claimed the duckdb slot:\n{log}")
        time.sleep(0.1)
    return process, slots[0].run_id


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the whole process group, as the OOM killer would: nothing gets to clean up."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def wait_for_zombie(pid: int) -> None:
    """Until the exited child is a zombie: gone, but not yet reaped by its parent (us)."""
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline, f"pid {pid} did not exit"
        time.sleep(0.01)


def evaluate(defs: dg.Definitions, instance: dg.DagsterInstance):
    sensor = defs.resolve_sensor_def("dead_run_sensor")
    return sensor(dg.build_sensor_context(instance=instance, definitions=defs))


def test_killed_run_is_failed_and_its_slot_freed(defs, setup):
    instance = setup.instance
    process, run_id = start_slot_holder(setup)
    pid = process.pid
    killed_at = time.monotonic()
    kill(process)
    # Not reaped yet: the killed worker lingers as a zombie, as it does under a code server
    # that has not polled its child; it must count as dead.
    wait_for_zombie(pid)
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED

    result = evaluate(defs, instance)
    process.wait(timeout=10)

    assert run_id in result.skip_message
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    assert f"(pid {pid})" in failure.dagster_event.message
    assert "dead_run_sensor" in failure.dagster_event.message
    info = instance.event_log_storage.get_concurrency_info("duckdb")
    assert info.claimed_slots == [] and info.pending_steps == []

    # The next writer gets the slot at once (blocked, it would wait for ever).
    second = materialize(setup, "second", "--select", "raw/relay_catalog")
    try:
        assert second.wait(timeout=45) == 0, (setup.logs / "second.log").read_text()[-3000:]
    finally:
        kill(second)
    print(f"kill -> next run succeeded: {time.monotonic() - killed_at:.1f} s")
    # A second tick finds nothing more to do.
    assert evaluate(defs, instance).skip_message == NOTHING_TO_DO


def test_live_run_is_left_alone(defs, setup):
    instance = setup.instance
    process, run_id = start_slot_holder(setup)
    try:
        result = evaluate(defs, instance)
        assert result.skip_message == NOTHING_TO_DO
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
        assert [slot.run_id for slot in claimed_slots(instance)] == [run_id]
    finally:
        kill(process)
        process.wait(timeout=10)


def test_sensor_runs_from_the_start_every_minute(defs):
    sensor = defs.resolve_sensor_def("dead_run_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 60


def test_process_alive_judges_the_pid_and_its_start():
    now = time.time()
    assert process_alive(os.getpid(), now)
    # The same pid, but the process started after the run's event: a later process reusing it.
    assert not process_alive(os.getpid(), now - 3600)
    assert not process_alive(0, now)  # never a process-group probe

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_for_zombie(child.pid)
    assert not process_alive(child.pid, now)  # exited, not yet reaped
    child.wait()
    assert not process_alive(child.pid, now)  # gone
