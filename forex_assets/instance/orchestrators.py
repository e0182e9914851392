"""Who orchestrates each run, and what to do about runs whose orchestrator died.

Every process that orchestrates a run of this project (`dagster job execute`, `train`, a
run worker the daemon launched for a schedule, sensor or backfill) goes through the
budgeted executor, which tags the run with its `ProcessIdentity` (host, pid, start time)
before its first step. A killed orchestrator cannot mark its run failed or return what
it held, so others do it for it:

* the budgeted executor, when a run starts and every `WAIT_REPORT_S` while a step of it
  waits for a pool slot or cores (`reap_dead_runs`): a STARTED run whose orchestrator on
  this host is dead is marked failed, and its pool slots (instance storage) and cores
  (core ledger) are freed; so are slots still held by runs that already ended;
* the daemon's run monitoring, every `poll_interval_seconds` (30 s in dagster.yaml),
  through `forex_assets.instance.run_launcher`: it marks such runs failed, and frees
  their slots `free_slots_after_run_end_seconds` later;
* a dead process's core-ledger rows are reaped on the next reservation anyway.

Runs orchestrated on another host are left alone: only that host can tell whether the
process lives (with shared PostgreSQL storage, run the daemon on every host).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from forex_assets.compute.core_ledger import CoreLedger
from forex_assets.processes import ProcessIdentity

ORCHESTRATOR_TAG = "forex_assets/orchestrator"
# How often a waiting step says what it waits for, and re-checks whether the holder lives.
WAIT_REPORT_S = 30.0


def register_orchestrator(instance: DagsterInstance, run_id: str) -> ProcessIdentity:
    """Tag the run with this process, the one whose death must fail it."""
    me = ProcessIdentity.current()
    instance.add_run_tags(run_id, {ORCHESTRATOR_TAG: me.token()})
    return me


def orchestrator_of(run: DagsterRun) -> ProcessIdentity | None:
    token = run.tags.get(ORCHESTRATOR_TAG)
    if not token:
        return None
    try:
        return ProcessIdentity.from_token(token)
    except ValueError:
        return None


def dead_orchestrator_message(run: DagsterRun, orchestrator: ProcessIdentity) -> str:
    return (
        f"the orchestrator of run {run.run_id} (pid {orchestrator.pid} on {orchestrator.host}) "
        "is gone (killed, or its machine restarted): the run is marked failed and its pool "
        "slots and cores are freed. Re-execute it from the failure (UI: Re-execute > From "
        "failure) or start it again."
    )


@dataclass(frozen=True)
class HolderState:
    """A run that holds a pool slot or cores, as a waiting step reports it."""

    run_id: str
    status: DagsterRunStatus | None  # None: the run no longer exists
    orchestrator: ProcessIdentity | None

    def describe(self) -> str:
        if self.status is None:
            return f"run {self.run_id} (deleted)"
        who = self.orchestrator.describe() if self.orchestrator else "orchestrator unknown"
        return f"run {self.run_id} ({self.status.value.lower()}, {who})"


def holder_state(instance: DagsterInstance, run_id: str) -> HolderState:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return HolderState(run_id, None, None)
    return HolderState(run_id, run.status, orchestrator_of(run))


def free_run(instance: DagsterInstance, run_id: str, ledger: CoreLedger | None) -> None:
    """Return every pool slot (claimed or pending) and core reservation of a run."""
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    if ledger is not None:
        ledger.release_all(f"{run_id}:")


def reap_dead_runs(
    instance: DagsterInstance,
    ledger: CoreLedger | None,
    log: Callable[[str], None],
    exclude: Iterable[str] = (),
) -> list[str]:
    """Fail runs whose orchestrator on this host died; free what dead or ended runs hold.

    Returns the ids of the runs it freed. `exclude` names runs never to touch (the caller's).
    """
    skip = set(exclude)
    freed: list[str] = []
    in_progress = instance.get_runs(filters=RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES)))
    for run in in_progress:
        orchestrator = orchestrator_of(run)
        if run.run_id in skip or orchestrator is None or orchestrator.alive() is not False:
            continue
        current = instance.get_run_by_id(run.run_id)  # another process may have reaped it
        if current is None or current.status not in IN_PROGRESS_RUN_STATUSES:
            continue
        message = dead_orchestrator_message(run, orchestrator)
        instance.report_run_failed(current, message)
        free_run(instance, run.run_id, ledger)
        log(message)
        freed.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders: set[str] = set()
        for key in storage.get_concurrency_keys():
            info = storage.get_concurrency_info(key)
            holders.update(slot.run_id for slot in info.claimed_slots)
            holders.update(step.run_id for step in info.pending_steps)
        for run_id in sorted(holders - skip - set(freed)):
            state = holder_state(instance, run_id)
            if state.status is None or state.status not in IN_PROGRESS_RUN_STATUSES:
                free_run(instance, run_id, ledger)
                log(f"freed the pool slots still held by {state.describe()}")
                freed.append(run_id)
    return freed
