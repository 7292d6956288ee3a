"""Launch a backfill the way the Dagster UI does, then drive it the way the daemons would.

The UI's "Materialize all" over a partition range (the "Launch backfill" button of the choose
partitions dialog) sends one GraphQL mutation, ``launchPartitionBackfill``, with
``{assetSelection, partitionNames, fromFailure: false, tags}``: every asset in view, and the
range already exploded into partition keys in the browser. That takes dagster-graphql's pure
asset backfill branch (``create_and_launch_partition_backfill`` in
``dagster_graphql/implementation/execution/backfill.py``), which computes the backfill's target
subset with ``PartitionBackfill.from_asset_partitions`` and stores the backfill as REQUESTED; no
run starts then. The backfill daemon picks it up: each ``execute_backfill_iteration``
(``dagster/_daemon/backfill.py``) submits the runs whose parents are done and, once everything is
materialized or failed, marks the backfill finished.

This module does exactly that against a real ``DagsterInstance`` (sqlite in a temporary
directory): the mutation goes through dagster-graphql's schema, and the daemon's iteration
function is called in a loop. With the instance from ``ui_backfill_instance`` each submitted run
is launched and executed synchronously, in this process, while the iteration submits it (the
setup of Dagster's own backfill daemon tests); an instance with a queued run coordinator has its
queue drained by one iteration of the run queue daemon after each backfill iteration.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, BulkActionStatus
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import (
    FINISHED_STATUSES,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.daemon import get_default_daemon_logger
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster_graphql.test.utils import execute_dagster_graphql

# The mutation as the UI sends it (ui-core/src/instance/backfill/BackfillUtils.tsx), with the
# fields this helper reads.
LAUNCH_PARTITION_BACKFILL_MUTATION = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message partitionKeys }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
    ... on InvalidSubsetError { message }
  }
}
"""

DefinitionsTarget = str | os.PathLike | ModuleType
"""A module name (``"nostr_assets.definitions"``), a ``.py`` file, or an imported module."""


@dataclass(frozen=True)
class BackfillRun:
    """One run the backfill launched.

    Attributes:
        run_id: The run's id.
        asset_selection: The asset keys the run materializes (``DagsterRun.asset_selection``).
        asset_check_selection: The asset checks the run executes, if it selects any explicitly.
        partition_key: The ``dagster/partition`` tag: set when the run covers one partition.
        partition_range: (``dagster/asset_partition_range_start``, ``..._end``): set when the
            run covers a range in one run (a single-run backfill policy); None otherwise.
        status: The run's status when the helper returned.
        tags: Every tag of the run.
    """

    run_id: str
    asset_selection: frozenset[dg.AssetKey]
    asset_check_selection: frozenset[dg.AssetCheckKey] | None
    partition_key: str | None
    partition_range: tuple[str, str] | None
    status: DagsterRunStatus
    tags: Mapping[str, str]

    @classmethod
    def from_run(cls, run: DagsterRun) -> BackfillRun:
        start = run.tags.get(ASSET_PARTITION_RANGE_START_TAG)
        end = run.tags.get(ASSET_PARTITION_RANGE_END_TAG)
        return cls(
            run_id=run.run_id,
            asset_selection=frozenset(run.asset_selection or ()),
            asset_check_selection=(
                frozenset(run.asset_check_selection)
                if run.asset_check_selection is not None
                else None
            ),
            partition_key=run.tags.get(PARTITION_NAME_TAG),
            partition_range=(start, end) if start is not None and end is not None else None,
            status=run.status,
            tags=dict(run.tags),
        )


@dataclass(frozen=True)
class BackfillOutcome:
    """What a UI backfill targeted, what it launched and how it ended.

    Attributes:
        backfill_id: The id the mutation returned.
        status: The backfill's status when the helper returned: REQUESTED when it was only
            launched (``execute=False``), else a terminal one (COMPLETED_SUCCESS,
            COMPLETED_FAILED, FAILED, CANCELED).
        asset_selection: The asset keys sent in the mutation.
        partition_keys: The partition keys sent in the mutation.
        target_subset: The backfill's target, as Dagster computed it from the selection and the
            partition keys (``AssetBackfillData.target_subset``).
        target: The same target in plain form: asset key -> its targeted partition keys
            (sorted), or None for an unpartitioned asset.
        runs: Every run the backfill launched, oldest first.
        iterations: How many backfill daemon iterations it took.
        error: The backfill's error, if it recorded one.
    """

    backfill_id: str
    status: BulkActionStatus
    asset_selection: tuple[dg.AssetKey, ...]
    partition_keys: tuple[str, ...]
    target_subset: AssetGraphSubset
    target: Mapping[dg.AssetKey, tuple[str, ...] | None]
    runs: tuple[BackfillRun, ...] = ()
    iterations: int = 0
    error: str | None = None

    @property
    def target_asset_keys(self) -> frozenset[dg.AssetKey]:
        """Every asset key the backfill targets."""
        return frozenset(self.target)

    @property
    def missing_asset_keys(self) -> frozenset[dg.AssetKey]:
        """Selected asset keys that the backfill does not target at all."""
        return frozenset(self.asset_selection) - self.target_asset_keys

    @property
    def materialized_by_runs(self) -> Mapping[dg.AssetKey, list[BackfillRun]]:
        """Asset key -> the runs that selected it."""
        by_key: dict[dg.AssetKey, list[BackfillRun]] = {}
        for run in self.runs:
            for key in run.asset_selection:
                by_key.setdefault(key, []).append(run)
        return by_key

    @property
    def succeeded(self) -> bool:
        return self.status == BulkActionStatus.COMPLETED_SUCCESS and all(
            run.status == DagsterRunStatus.SUCCESS for run in self.runs
        )


@contextmanager
def ui_backfill_instance(temp_dir: str | os.PathLike | None = None) -> Iterator[dg.DagsterInstance]:
    """A persistent test instance (sqlite storage in ``temp_dir``, or a fresh temporary
    directory) whose run coordinator and run launcher are Dagster's synchronous in-memory test
    ones: a run the backfill daemon submits is launched at once and executed in this process
    before the submission returns. Sets DAGSTER_HOME to the directory while open."""
    with dg.instance_for_test(
        temp_dir=os.fspath(temp_dir) if temp_dir is not None else None,
        synchronous_run_coordinator=True,
        overrides={
            "run_launcher": {"module": __name__, "class": "ThreadedSyncRunLauncher"},
            # The local compute log manager tails stdout through a subprocess that, under
            # pytest's output capture and a run in a thread, never ends: capture nothing.
            "compute_logs": {
                "module": "dagster._core.storage.noop_compute_log_manager",
                "class": "NoOpComputeLogManager",
            },
        },
    ) as instance:
        yield instance


class ThreadedSyncRunLauncher(SyncInMemoryRunLauncher):
    """Dagster's synchronous test launcher, executing the run in a thread of its own and
    waiting for it. The backfill daemon's iteration calls the launcher inside a running asyncio
    event loop; a real run worker is a process of its own with no loop, and assets that start
    their own loop (`asyncio.run`) need the same here."""

    def launch_run(self, context) -> None:
        failure: list[BaseException] = []

        def run() -> None:
            try:
                super(ThreadedSyncRunLauncher, self).launch_run(context)
            except BaseException as error:  # re-raised in the caller's thread
                failure.append(error)

        worker = threading.Thread(target=run, name=f"run-{context.dagster_run.run_id[:8]}")
        worker.start()
        worker.join()
        if failure:
            raise failure[0]


def _loadable_target(
    definitions: DefinitionsTarget, attribute: str | None, working_directory: str | None
) -> LoadableTargetOrigin:
    if isinstance(definitions, ModuleType):
        definitions = definitions.__name__
    text = os.fspath(definitions)
    if text.endswith(".py") or Path(text).is_file():
        path = Path(text).resolve()
        return LoadableTargetOrigin(
            executable_path=sys.executable,
            python_file=str(path),
            attribute=attribute,
            working_directory=working_directory or str(path.parent),
        )
    return LoadableTargetOrigin(
        executable_path=sys.executable,
        module_name=text,
        attribute=attribute,
        working_directory=working_directory or os.getcwd(),
    )


@contextmanager
def ui_workspace(
    definitions: DefinitionsTarget,
    instance: dg.DagsterInstance,
    *,
    attribute: str | None = None,
    working_directory: str | None = None,
    location_name: str = "ui_backfill",
) -> Iterator[WorkspaceProcessContext]:
    """A workspace with one code location, loaded in this process from ``definitions`` (the
    webserver and the daemon would load it through a code server; the GraphQL resolvers and the
    daemon functions see the same RemoteRepository either way). Raises if the location fails
    to load."""
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=_loadable_target(definitions, attribute, working_directory),
        location_name=location_name,
    )
    with WorkspaceProcessContext(
        instance, InProcessWorkspaceLoadTarget(origin)
    ) as workspace_context:
        entry = (
            workspace_context.create_request_context()
            .get_code_location_entries()
            .get(location_name)
        )
        if entry is None or entry.code_location is None:
            error = entry.load_error if entry is not None else None
            raise RuntimeError(f"code location {location_name!r} did not load: {error}")
        yield workspace_context


def _key_input(key: dg.AssetKey) -> dict:
    return {"path": list(key.path)}


def _as_key(key: dg.AssetKey | str | Sequence[str]) -> dg.AssetKey:
    if isinstance(key, dg.AssetKey):
        return key
    if isinstance(key, str):
        return dg.AssetKey.from_user_string(key)
    return dg.AssetKey(list(key))


def _plain_target(subset: AssetGraphSubset) -> dict[dg.AssetKey, tuple[str, ...] | None]:
    target: dict[dg.AssetKey, tuple[str, ...] | None] = {
        key: None for key in subset.non_partitioned_asset_keys
    }
    for key, partitions in subset.partitions_subsets_by_asset_key.items():
        target[key] = tuple(sorted(partitions.get_partition_keys()))
    return target


def send_launch_partition_backfill(
    workspace_context: WorkspaceProcessContext,
    asset_selection: Sequence[dg.AssetKey],
    partition_keys: Sequence[str],
    tags: Mapping[str, str] | None = None,
) -> str:
    """Send the UI's ``launchPartitionBackfill`` mutation; return the new backfill's id.

    The variables are those of the choose-partitions dialog's "Launch backfill" for assets
    that are not one user-defined job (LaunchAssetChoosePartitionsDialog.tsx, onLaunchAsBackfill):
    ``{tags, assetSelection, partitionNames, fromFailure: false}``."""
    variables = {
        "backfillParams": {
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
            "assetSelection": [_key_input(key) for key in asset_selection],
            "partitionNames": list(partition_keys),
            "fromFailure": False,
        }
    }
    result = execute_dagster_graphql(
        workspace_context.create_request_context(), LAUNCH_PARTITION_BACKFILL_MUTATION, variables
    )
    payload = result.data["launchPartitionBackfill"]
    if payload["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill failed: {payload}")
    return payload["backfillId"]


def _backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[DagsterRun]:
    records = instance.get_run_records(RunsFilter.for_backfill(backfill_id))
    return [record.dagster_run for record in sorted(records, key=lambda r: r.create_timestamp)]


def _drain_run_queue(workspace_context: WorkspaceProcessContext) -> None:
    """What the run queue daemon does in one iteration, if the instance queues runs."""
    if isinstance(workspace_context.instance.run_coordinator, QueuedRunCoordinator):
        with QueuedRunCoordinatorDaemon(interval_seconds=0) as daemon:
            list(daemon.run_iteration(workspace_context))


def _wait_for_runs(instance: dg.DagsterInstance, backfill_id: str, timeout: float) -> None:
    """Wait for launched runs to finish (a no-op with the synchronous launcher, whose runs have
    finished by the time they are submitted). Queued runs are left to the queue daemon."""
    deadline = time.monotonic() + timeout
    while True:
        pending = [
            run
            for run in _backfill_runs(instance, backfill_id)
            if run.status not in FINISHED_STATUSES and run.status != DagsterRunStatus.QUEUED
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs still unfinished: {[(r.run_id, r.status) for r in pending]}")
        time.sleep(0.2)


def drive_backfill(
    workspace_context: WorkspaceProcessContext,
    backfill_id: str,
    *,
    max_iterations: int = 100,
    run_timeout: float = 600.0,
    logger: logging.Logger | None = None,
) -> int:
    """Run backfill daemon iterations until the backfill reaches a terminal status; return how
    many it took.

    Each iteration is ``dagster._daemon.backfill.execute_backfill_iteration``, the body of the
    backfill daemon's loop (without its thread pools): it submits the runs that may start now
    and updates the backfill's progress, or finishes it. After each, a queued run coordinator's
    queue is drained and launched runs are awaited, so the next iteration sees their results.
    Raises if an iteration reports an error or if the backfill is not done in
    ``max_iterations``."""
    instance = workspace_context.instance
    logger = logger or get_default_daemon_logger("BackfillDaemon")
    for iteration in range(1, max_iterations + 1):
        errors = [
            error
            for error in execute_backfill_iteration(workspace_context, logger)
            if error is not None
        ]
        _drain_run_queue(workspace_context)
        _wait_for_runs(instance, backfill_id, run_timeout)
        backfill = instance.get_backfill(backfill_id)
        if backfill is None:
            raise RuntimeError(f"backfill {backfill_id} disappeared")
        if errors and backfill.status not in BULK_ACTION_TERMINAL_STATUSES:
            raise RuntimeError(
                f"backfill iteration {iteration} failed: "
                + "\n".join(e.to_string() for e in errors)
            )
        if backfill.status in BULK_ACTION_TERMINAL_STATUSES:
            return iteration
    raise TimeoutError(
        f"backfill {backfill_id} still {instance.get_backfill(backfill_id).status} after "
        f"{max_iterations} daemon iterations"
    )


def launch_ui_backfill(
    definitions: DefinitionsTarget,
    instance: dg.DagsterInstance,
    asset_selection: Sequence[dg.AssetKey | str | Sequence[str]],
    partition_keys: Sequence[str] | dg.PartitionKeyRange,
    *,
    tags: Mapping[str, str] | None = None,
    execute: bool = True,
    attribute: str | None = None,
    working_directory: str | None = None,
    max_iterations: int = 100,
    run_timeout: float = 600.0,
) -> BackfillOutcome:
    """Launch a backfill as the UI's "Materialize all" over partitions does, and (unless
    ``execute=False``) drive it to completion as the backfill daemon would.

    Args:
        definitions: Where the code location's Definitions live: a module name such as
            ``"nostr_assets.definitions"``, a ``.py`` file, or an imported module. Loaded in this
            process as a code location.
        instance: The instance to backfill on; ``ui_backfill_instance()`` gives one with
            synchronous run coordination and launching (sqlite in a temporary directory).
        asset_selection: The selected asset keys (``AssetKey``, ``"a/b"`` or ``["a", "b"]``),
            as the UI sends them: every asset in view for "Materialize all".
        partition_keys: The selected partition keys, or a ``PartitionKeyRange``, which is
            exploded into keys with the partitions definition of the first partitioned selected
            asset, as the UI does before it sends them.
        tags: Tags the user adds in the dialog; they go on the backfill and its runs.
        execute: False stops after the mutation: the backfill is stored (REQUESTED) with its
            target computed, and nothing runs.
        attribute: The Definitions variable in the module, if it has several.
        working_directory: The code location's working directory (default: the current one,
            or the file's directory).
        max_iterations: At most this many backfill daemon iterations.
        run_timeout: Seconds to wait for launched runs in each iteration (asynchronous
            launchers only).

    Returns:
        BackfillOutcome: the backfill's target subset (asset keys and partitions), the runs it
        launched (asset selection, partition or partition range tags, final status) and its
        final status.
    """
    keys = [_as_key(key) for key in asset_selection]
    with ui_workspace(
        definitions, instance, attribute=attribute, working_directory=working_directory
    ) as workspace_context:
        asset_graph = workspace_context.create_request_context().asset_graph
        if isinstance(partition_keys, dg.PartitionKeyRange):
            partitions_def = next(
                asset_graph.get(key).partitions_def
                for key in keys
                if asset_graph.get(key).is_partitioned
            )
            partition_keys = partitions_def.get_partition_keys_in_range(partition_keys)
        backfill_id = send_launch_partition_backfill(workspace_context, keys, partition_keys, tags)
        iterations = (
            drive_backfill(
                workspace_context,
                backfill_id,
                max_iterations=max_iterations,
                run_timeout=run_timeout,
            )
            if execute
            else 0
        )
        backfill = instance.get_backfill(backfill_id)
        assert backfill is not None
        target_subset = backfill.get_asset_backfill_data(asset_graph).target_subset
        return BackfillOutcome(
            backfill_id=backfill_id,
            status=backfill.status,
            asset_selection=tuple(keys),
            partition_keys=tuple(partition_keys),
            target_subset=target_subset,
            target=_plain_target(target_subset),
            runs=tuple(BackfillRun.from_run(run) for run in _backfill_runs(instance, backfill_id)),
            iterations=iterations,
            error=backfill.error.to_string() if backfill.error else None,
        )
