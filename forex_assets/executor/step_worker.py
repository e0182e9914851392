"""The warm worker process: code loaded once, then one step after another.

Dagster's multiprocess executor starts a fresh interpreter for every step, which imports
Dagster, the code location and the numeric stack again each time (seconds per step). A
warm worker pays that once: it is started (with `spawn`, so it never inherits an OpenMP
runtime that a `fork` could deadlock) with its thread budget already in its environment,
loads the job, and then executes the steps its parent sends over a pipe, streaming their
Dagster events back. It runs steps of one thread budget only, because some libraries
(polars) fix their pool size when they load.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from forex_assets.compute.thread_budget import apply_budget, environment_set
from forex_assets.processes import exit_with_parent


@dataclass(frozen=True)
class StepCommand:
    """Everything a worker needs to execute one step of a run."""

    recon_job: Any  # ReconstructableJob
    dagster_run: Any  # DagsterRun
    run_config: dict
    step_key: str
    instance_ref: Any  # InstanceRef
    retry_mode: Any  # RetryMode
    known_state: Any  # KnownExecutionState
    repository_load_data: Any
    # Set for the step's duration: how it may grow (`compute.step_budget.StepBudget`).
    environment: dict[str, str]


# Messages from a worker to its parent: (kind, payload)
EVENT = "event"  # payload: DagsterEvent
STEP_DONE = "done"  # payload: StepDone
WORKER_ERROR = "error"  # payload: SerializableErrorInfo of a failure outside the step
READY = "ready"  # payload: pid, sent once the code is loaded


@dataclass(frozen=True)
class StepDone:
    memory_bytes: int  # resident memory of the worker after the step
    cpu_s: float  # CPU seconds of the step: the worker's, and its task processes' (reaped)


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (all threads)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def resident_memory_bytes(pid: int | None = None) -> int:
    """Resident set size of `pid` (default: this process); 0 where the platform does not say."""
    try:
        with open(f"/proc/{pid or os.getpid()}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def worker_main(
    connection: Connection, threads: int, blas_cap: int, term_event: Any, preload: Any
) -> None:
    """Entry point of a worker process (its environment already carries the budget)."""
    exit_with_parent()
    apply_budget(threads, blas_cap)
    from dagster._utils.error import serializable_error_info_from_exc_info

    instances: list[tuple[Any, Any]] = []  # (InstanceRef, DagsterInstance); refs hold dicts
    try:
        if preload is not None:
            preload.get_definition()  # import the code location before the first step
    except Exception:
        import sys

        connection.send((WORKER_ERROR, serializable_error_info_from_exc_info(sys.exc_info())))
        return
    connection.send((READY, os.getpid()))
    while True:
        try:
            command = connection.recv()
        except EOFError:
            return
        if command is None:
            return
        cpu = cpu_seconds()
        try:
            with environment_set(command.environment):
                for event in _execute_step(command, instances, term_event):
                    connection.send((EVENT, event))
        except BaseException:
            import sys

            connection.send((WORKER_ERROR, serializable_error_info_from_exc_info(sys.exc_info())))
            return  # state after an escaped error is unknown: let the parent start afresh
        connection.send((STEP_DONE, StepDone(resident_memory_bytes(), cpu_seconds() - cpu)))


def _worker_log_manager(instance: Any, dagster_run: Any, run_config: dict) -> Any:
    """Dagster's default console logger for events outside the step, at the run's level.

    The stock context-free log manager always logs at DEBUG; a run configured quieter
    (`train` logs warnings only) would print a line per step from every worker.
    """
    from dagster._core.execution.context.logger import InitLoggerContext
    from dagster._core.log_manager import DagsterLogManager
    from dagster._loggers import default_system_loggers

    console = (run_config.get("loggers") or {}).get("console", {}).get("config", {})
    loggers = [
        logger_def.logger_fn(
            InitLoggerContext(
                {**logger_config, **console}, logger_def, job_def=None, run_id=dagster_run.run_id
            )
        )
        for logger_def, logger_config in default_system_loggers(instance)
    ]
    return DagsterLogManager.create(loggers=loggers, instance=instance, dagster_run=dagster_run)


def _execute_step(
    command: StepCommand, instances: dict[Any, Any], term_event: Any
) -> Iterator[Any]:
    from dagster._core.definitions.metadata import MetadataValue
    from dagster._core.events import DagsterEvent
    from dagster._core.execution.api import create_execution_plan, execute_plan_iterator
    from dagster._core.instance import DagsterInstance
    from dagster._utils import start_termination_thread

    from forex_assets.executor.log_capture import use_thread_mirroring

    instance = next((i for ref, i in instances if ref == command.instance_ref), None)
    if instance is None:
        instance = DagsterInstance.from_ref(command.instance_ref)
        use_thread_mirroring(instance)
        instances.append((command.instance_ref, instance))
    done = threading.Event()
    term_event.clear()
    start_termination_thread(term_event, done)
    try:
        log_manager = _worker_log_manager(instance, command.dagster_run, command.run_config)
        yield DagsterEvent.step_worker_started(
            log_manager,
            command.dagster_run.job_name,
            message=f'Executing step "{command.step_key}" in warm worker process {os.getpid()}.',
            metadata={
                "pid": MetadataValue.text(str(os.getpid())),
                "threads": MetadataValue.int(int(os.environ.get("FOREX_ASSETS_STEP_THREADS", "0"))),
            },
            step_key=command.step_key,
        )
        plan = create_execution_plan(
            job=command.recon_job,
            run_config=command.run_config,
            step_keys_to_execute=[command.step_key],
            known_state=command.known_state,
            repository_load_data=command.repository_load_data,
        )
        yield from execute_plan_iterator(
            plan,
            command.recon_job,
            command.dagster_run,
            run_config=command.run_config,
            retry_mode=command.retry_mode.for_inner_plan(),
            instance=instance,
        )
    finally:
        done.set()
        term_event.set()  # stops the termination thread; cleared before the next step
