"""Record a finished run from a Dagster instance, for the scheduling simulator to replay.

What each step cost comes from the event log, as the budgeted executor and the steps
wrote it:

- the step graph: the run's execution plan snapshot (each step's inputs name the steps
  they come from; its pool is the step's `pool`, else its concurrency tag);
- a step's threads: the `threads` metadata of its STEP_WORKER_STARTING event (a run that
  another executor ran has none, and is recorded as one thread per step);
- a step's wall: from STEP_WORKER_STARTING (else STEP_START) to STEP_SUCCESS, because the
  executor holds the step's cores in the ledger from the launch, worker start included;
- a step's tasks: the `tasks` metadata of its materialization (`TASKS_METADATA`, the
  format `forex_assets.compute.recorded_run` documents). The step's own work is its wall
  less the wall its tasks spanned (first task start to last task end). A plain step's
  own work is its whole wall, replayed single-threaded: its recorded threads are not
  used to scale it, since nothing says how well it used them.
- the machine: the cores in the executor's "Resource plan" engine event; the run's
  start-up (run start to the first launch) and tear-down (last step end to run end).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.tags import GLOBAL_CONCURRENCY_TAG

from forex_assets.compute.elastic_pool import TASKS_METADATA
from forex_assets.compute.recorded_run import (
    RecordedRun,
    RecordedStep,
    RecordedTask,
)

# The executor's plan event starts "Resource plan: <cores> cores, ..." (budgeted.plan_summary).
PLAN_MESSAGE = re.compile(r"^Resource plan: (\d+) cores")
# A task whose process used no measurable CPU still needs a positive weight.
MIN_TASK_WEIGHT = 1e-3
EVENT_TYPES = {
    DagsterEventType.RUN_START,
    DagsterEventType.RUN_SUCCESS,
    DagsterEventType.ENGINE_EVENT,
    DagsterEventType.STEP_WORKER_STARTING,
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.ASSET_MATERIALIZATION,
}


class RunRecordError(ValueError):
    """The run cannot be recorded as it stands (unknown, unfinished, incomplete events)."""


@dataclass
class _StepTimes:
    launched: float | None = None
    started: float | None = None
    succeeded: float | None = None
    threads: int = 1
    tasks: list[Mapping] = field(default_factory=list)


def record_run(instance: DagsterInstance, run_id: str, *, cores: int | None = None) -> RecordedRun:
    """The RecordedRun of the successful run `run_id`; `cores` is needed only when the
    run's log lacks the budgeted executor's plan event (another executor ran it)."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise RunRecordError(
            f"no run {run_id!r} in the instance at {instance.root_directory}; check the run id "
            "and DAGSTER_HOME"
        )
    if run.status != DagsterRunStatus.SUCCESS:
        raise RunRecordError(
            f"run {run_id} is {run.status.value}: only a successful run says what every step "
            "cost; record one that succeeded"
        )
    snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    selected = set(snapshot.step_keys_to_execute)
    graph = {
        step.key: (
            step.pool or (step.tags or {}).get(GLOBAL_CONCURRENCY_TAG),
            sorted(
                {
                    handle.step_key
                    for step_input in step.inputs
                    for handle in step_input.upstream_output_handles
                    if handle.step_key in selected
                }
            ),
        )
        for step in snapshot.steps
        if step.key in selected
    }
    entries = instance.get_records_for_run(run_id, of_type=EVENT_TYPES).records
    return recorded_from_events(
        run.job_name, graph, [record.event_log_entry for record in entries], cores, run_id
    )


def recorded_from_events(
    job: str,
    graph: Mapping[str, tuple[str | None, Sequence[str]]],
    entries: Sequence[EventLogEntry],
    cores: int | None,
    run_id: str,
) -> RecordedRun:
    """Build the RecordedRun from a run's step graph (key -> (pool, deps)) and its events."""
    times = {key: _StepTimes() for key in graph}
    run_start = run_end = None
    plan_cores = None
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == DagsterEventType.RUN_START:
            run_start = entry.timestamp
        elif kind == DagsterEventType.RUN_SUCCESS:
            run_end = entry.timestamp
        elif kind == DagsterEventType.ENGINE_EVENT:
            match = PLAN_MESSAGE.match(event.message or "")
            if match:
                plan_cores = int(match.group(1))
        elif event.step_key in times:
            _step_event(times[event.step_key], kind, event, entry.timestamp)
    missing = sorted(k for k, t in times.items() if t.started is None or t.succeeded is None)
    if missing or run_start is None or run_end is None:
        raise RunRecordError(
            f"run {run_id}'s event log lacks the start or the success of the run or of steps "
            f"{missing}; record a run that executed every step of its plan (not a re-execution "
            "of a subset)"
        )
    measured_cores = plan_cores or cores
    if measured_cores is None:
        raise RunRecordError(
            f"run {run_id} has no 'Resource plan' event (the budgeted executor did not run "
            "it); pass the cores it ran on (--measured-cores)"
        )
    launches = {
        key: t.launched if t.launched is not None else t.started for key, t in times.items()
    }
    order = _topological(graph, launches)
    steps = tuple(_recorded_step(key, graph[key], times[key], launches[key]) for key in order)
    first_launch = min(launches.values())
    last_end = max(t.succeeded for t in times.values())
    return RecordedRun(
        job=job,
        steps=steps,
        measured_cores=measured_cores,
        measured_makespan_s=run_end - run_start,
        startup_s=max(0.0, first_launch - run_start),
        teardown_s=max(0.0, run_end - last_end),
        source=f"recorded from run {run_id} of {job} on {measured_cores} cores",
    )


def _step_event(times: _StepTimes, kind: DagsterEventType, event, timestamp: float) -> None:
    if kind == DagsterEventType.STEP_WORKER_STARTING:
        times.launched = timestamp
        threads = event.event_specific_data.metadata.get("threads")
        if threads is not None:
            times.threads = int(threads.value)
    elif kind == DagsterEventType.STEP_START:
        times.started = timestamp
    elif kind == DagsterEventType.STEP_SUCCESS:
        times.succeeded = timestamp
    elif kind == DagsterEventType.ASSET_MATERIALIZATION:
        tasks = event.step_materialization_data.materialization.metadata.get(TASKS_METADATA)
        if tasks is not None:
            value = tasks.value
            times.tasks.extend(json.loads(value) if isinstance(value, str) else value)


def _recorded_step(
    key: str, node: tuple[str | None, Sequence[str]], times: _StepTimes, launched: float
) -> RecordedStep:
    pool, deps = node
    wall = times.succeeded - launched
    tasks = tuple(
        RecordedTask(
            str(task["task"]),
            float(task["cpu_s"]),
            max(float(task["cpu_s"]), MIN_TASK_WEIGHT),
            bool(task.get("grows", False)),
        )
        for task in times.tasks
    )
    spanned = (
        max(float(t["start_s"]) + float(t["seconds"]) for t in times.tasks)
        - min(float(t["start_s"]) for t in times.tasks)
        if times.tasks
        else 0.0
    )
    return RecordedStep(key, tuple(deps), pool, times.threads, max(0.0, wall - spanned), tasks)


def _topological(
    graph: Mapping[str, tuple[str | None, Sequence[str]]], launches: Mapping[str, float]
) -> list[str]:
    """Steps after their dependencies; among those ready, in the order they launched."""
    left = {key: set(deps) for key, (_, deps) in graph.items()}
    order: list[str] = []
    while left:
        ready = sorted((k for k, deps in left.items() if not deps), key=lambda k: (launches[k], k))
        if not ready:
            raise RunRecordError(f"steps {sorted(left)} depend on each other in a cycle")
        for key in ready:
            del left[key]
            order.append(key)
        for deps in left.values():
            deps.difference_update(ready)
    return order
