"""Recovery without a person: runs whose process died are failed and their pool slots freed.

A run killed by SIGKILL or the OOM killer never reports its end, so it stays STARTED and keeps
its `duckdb` pool slot: every later writer, scheduled or from the CLI, logs "Step blocked by
limit for pool duckdb" and waits forever. Dagster notices dead run workers only through a run
launcher's health check, which the DefaultRunLauncher lacks, and a CLI run has no launcher at
all; the code server fails the runs it launched when their process exits, but neither path
frees the slot, and a CLI run is failed by nobody. This sensor closes the gap on this machine.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

# Statuses in which some process of the run must still be alive. STARTING and NOT_STARTED runs
# have no process recorded yet and hold no slot: run monitoring's start timeout fails them.
WATCHED_STATUSES = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]

# Events that carry the pid of a process executing the run: the run worker (RUN_START) and,
# under a multiprocess executor, each step's own process (STEP_START).
PROCESS_EVENTS = {dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START}

# /proc gives a process's start in clock ticks after boot; boot time is whole seconds and moves
# when the wall clock is stepped. A process that started more than this after the run's first
# event from its pid is a later one that reused the pid (the kernel hands out pids in order:
# reuse within a minute needs 32,768 forks in that minute here, pid_max being 32768).
START_TIME_SLACK_S = 60.0

PROC = Path("/proc")


def process_alive(pid: int, seen_at: float) -> bool:
    """Whether ``pid`` is a live process that already existed at ``seen_at`` (a Unix time at
    which the run's process with that pid emitted an event): the same process, not a zombie and
    not a later process that reused the pid. When in doubt, alive: a live run must never be
    failed under its feet, while a dead one left alone only waits for the next tick."""
    if pid <= 0:
        return False  # os.kill(0 or -n) would probe a whole process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc (not Linux) or not readable: existence is all we know
    state, started_at = stat
    if state in ("Z", "X"):
        return False  # killed but not yet reaped by its parent (the code server, a shell)
    return started_at <= seen_at + START_TIME_SLACK_S


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """(state letter, start as Unix time) from /proc/<pid>/stat, or None when unavailable."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
        boot = _boot_time()
    except (OSError, ValueError):
        return None
    # Field 2, the command name, is in parentheses and may contain spaces or ')'.
    fields = text.rpartition(")")[2].split()
    state, start_ticks = fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    return state, boot + start_ticks / os.sysconf("SC_CLK_TCK")


def _boot_time() -> float:
    for line in (PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")


def run_processes(instance: dg.DagsterInstance, run_id: str) -> dict[int, float]:
    """pid -> time of its first event, for every process that executed part of the run."""
    seen: dict[int, float] = {}
    for entry in instance.all_logs(run_id, of_type=PROCESS_EVENTS):
        pid = entry.dagster_event.pid if entry.dagster_event else None
        if pid is not None:
            seen[pid] = min(seen.get(pid, entry.timestamp), entry.timestamp)
    return seen


@dataclass(frozen=True)
class RecoveredRun:
    run_id: str
    job_name: str
    status: dg.DagsterRunStatus  # the status it was stuck in
    pids: tuple[int, ...]


def dead_run_message(pids: tuple[int, ...], outcome: str = "failed") -> str:
    listed = ", ".join(str(p) for p in pids)
    return (
        f"The process running this run (pid {listed}) is gone without reporting an end: it was "
        "killed (SIGKILL, the OOM killer), crashed, or the machine restarted. Marked "
        f"{outcome} by dead_run_sensor, which also freed its concurrency pool slots (pool "
        "duckdb) so that later runs are not blocked."
    )


def recover_dead_runs(instance: dg.DagsterInstance) -> list[RecoveredRun]:
    """Fail every STARTED run (cancel every CANCELING one) none of whose processes is alive on
    this machine, and free its pool slots and queued claims at once."""
    recovered = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=WATCHED_STATUSES)):
        run_id = record.dagster_run.run_id
        processes = run_processes(instance, run_id)
        if not processes or any(process_alive(pid, at) for pid, at in processes.items()):
            continue
        # Read the run again only now: a worker that ended normally wrote its final status
        # before exiting, so a run still in progress after its processes died never will be.
        run = instance.get_run_by_id(run_id)
        if run is None or run.status not in WATCHED_STATUSES:
            continue
        pids = tuple(sorted(processes))
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, dead_run_message(pids, "canceled"))
        else:
            instance.report_run_failed(run, dead_run_message(pids))
        # Slots held and steps still queued for one: a dead run's queued claim, once assigned a
        # slot, would hold it as surely as a claimed one.
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        recovered.append(RecoveredRun(run_id, run.job_name, run.status, pids))
    return recovered


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_sensor(context: dg.SensorEvaluationContext):
    """Every minute, fails runs whose process died without reporting (SIGKILL, OOM killer,
    reboot) and frees their `duckdb` pool slots, so the next writer does not wait forever.
    It judges processes on this machine: the code server and the run workers share it."""
    recovered = recover_dead_runs(context.instance)
    for run in recovered:
        context.log.warning(
            f"run {run.run_id} ({run.job_name}) was {run.status.value} with no live process "
            f"(pid {', '.join(map(str, run.pids))}): ended it and freed its pool slots"
        )
    if not recovered:
        return dg.SkipReason("every started or canceling run has a live process")
    ids = ", ".join(run.run_id for run in recovered)
    return dg.SkipReason(f"ended {len(recovered)} run(s) whose process was gone: {ids}")
