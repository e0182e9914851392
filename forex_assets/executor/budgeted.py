"""The budgeted executor: pools, per-step thread budgets and warm worker processes.

At run start it computes the resource plan (run config first, then the environment's
overrides, then what the machine implies), writes it to the run's event log, and syncs
the plan's pool limits into the instance. Each ready step is admitted by
`BudgetedActiveExecution` (pool slot, cores from the machine-wide ledger, the run's
`symbols` slot for heavy stages), then runs in a warm worker whose libraries were started
with exactly that many threads. A worker that dies mid-step fails that step with the exit
code and returns its cores and pool slot at once, so the run can be re-executed from the
failure.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from multiprocessing.connection import wait

import dagster as dg
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.base import Executor
from dagster._core.storage.tags import PARTITION_NAME_TAG
from dagster._utils.error import SerializableErrorInfo, serializable_error_info_from_exc_info

from forex_assets.compute.core_ledger import CoreLedger, default_ledger_path
from forex_assets.compute.core_use import StepUse, core_use_png, held_core_seconds, peak_cores
from forex_assets.compute.overrides import resolve_plan
from forex_assets.compute.plan import (
    HEAVY_POOLS,
    MEMORY_HEADROOM,
    PlanSettings,
    Pool,
    ResourcePlan,
)
from forex_assets.compute.step_budget import StepBudget
from forex_assets.defs.assets.markdown import markdown_image
from forex_assets.executor.scheduling import (
    BudgetedActiveExecution,
    FastConcurrencyContext,
    SymbolStage,
    step_pool,
    sync_instance_pool_limits,
)
from forex_assets.executor.step_worker import EVENT, READY, STEP_DONE, WORKER_ERROR, StepCommand
from forex_assets.executor.symbols import ensure_symbol_partition
from forex_assets.executor.waits import WAIT_PREFIX, WaitReporter
from forex_assets.executor.worker_pool import WORKER_START_TIMEOUT_S, WorkerPool
from forex_assets.instance.orchestrators import reap_dead_runs, register_orchestrator

# A worker is replaced after this many steps: respawning costs about one step's start-up
# in the stock executor, so recycling every 100 steps adds ~1 % while bounding leaks.
DEFAULT_MAX_STEPS_PER_WORKER = 100
# How long the orchestrator waits for worker events: long when nothing else can happen,
# short while ready steps wait for cores or slots that another run may free.
IDLE_POLL_S = 1.0
RESOURCE_POLL_S = 0.05


@dataclasses.dataclass(frozen=True)
class ExecutorSettings:
    plan: PlanSettings
    retries: RetryMode
    max_steps_per_worker: int
    max_worker_memory_growth_mb: int | None
    elastic: bool = True


def plan_summary(plan: ResourcePlan) -> str:
    """One line for the run log: cores, pool limits, threads per step."""
    pools = ", ".join(f"{p}={n}" for p, n in plan.pool_limits.items())
    threads = ", ".join(f"{p}={n}" for p, n in plan.step_threads.items())
    return f"{plan.cores} cores, pools {pools}, threads per step {threads}"


# The key of the core-use event's per-step figures (JSON: step -> threads, peak_cores,
# seconds, cpu_s), for benchmarks and the scheduling simulator's recorder.
STEP_USE_METADATA = "step use"
CORE_USE_PREFIX = "Core use"


def core_use_event(
    plan_context: PlanOrchestrationContext,
    ledger: CoreLedger,
    run_id: str,
    steps: dict[str, StepUse],
    settings: ExecutorSettings,
) -> DagsterEvent:
    """The run's use of the machine: cores held over time (a plot), effective cores."""
    prefix = f"{run_id}:"
    spans = ledger.history(prefix)
    start = min((s.start for s in spans), default=time.time())
    end = time.time()
    wall = max(end - start, 1e-9)
    cpu = sum(use.cpu_s for use in steps.values())
    rows = [
        "| step | threads | peak cores | seconds | CPU s | effective cores |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    per_step = {}
    for use in sorted(steps.values(), key=lambda u: -u.cpu_s):
        peak = peak_cores(spans, f"{prefix}{use.step}")
        rows.append(
            f"| {use.step} | {use.threads} | {peak} | {use.seconds:.1f} | {use.cpu_s:.1f} | "
            f"{use.effective_cores:.2f} |"
        )
        per_step[use.step] = {
            "threads": use.threads,
            "peak_cores": peak,
            "seconds": round(use.seconds, 3),
            "cpu_s": round(use.cpu_s, 3),
        }
    effective = cpu / wall
    mode = "elastic" if settings.elastic else "static plan"
    png = core_use_png(
        spans, ledger.capacity, start, end, f"cores held ({mode}), {ledger.capacity} usable"
    )
    return DagsterEvent.engine_event(
        plan_context,
        f"{CORE_USE_PREFIX} ({mode}): {effective:.2f} effective cores of {ledger.capacity} usable "
        f"({effective / ledger.capacity:.0%}) over {wall:.0f} s",
        EngineEventData(
            metadata={
                "effective cores": dg.MetadataValue.float(round(effective, 3)),
                "utilization": dg.MetadataValue.float(round(effective / ledger.capacity, 3)),
                "usable cores": dg.MetadataValue.int(ledger.capacity),
                "held core-seconds": dg.MetadataValue.float(
                    round(held_core_seconds(spans, start, end), 1)
                ),
                "CPU seconds": dg.MetadataValue.float(round(cpu, 1)),
                "cores held": dg.MetadataValue.md(markdown_image(png, "cores held over time")),
                "steps": dg.MetadataValue.md("\n".join(rows)),
                STEP_USE_METADATA: dg.MetadataValue.json(per_step),
            }
        ),
    )


class BudgetedExecutor(Executor):
    def __init__(self, settings: ExecutorSettings):
        self._settings = settings

    @property
    def retries(self) -> RetryMode:
        return self._settings.retries

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        run = plan_context.dagster_run
        instance = plan_context.instance
        orchestrator = register_orchestrator(instance, run.run_id)
        symbol = run.tags.get(PARTITION_NAME_TAG)
        if symbol:
            ensure_symbol_partition(instance, symbol)

        plan, env_messages = resolve_plan(self._settings.plan)
        for message in env_messages:
            plan_context.log.warning(message)
        ledger = CoreLedger(default_ledger_path(), plan.cores)
        # Before this run waits on anything: fail runs whose orchestrator died, and free
        # what they and already-ended runs still hold.
        reap_dead_runs(instance, ledger, plan_context.log.warning, exclude=[run.run_id])
        notes: list[str] = []
        limits = sync_instance_pool_limits(plan_context.instance, plan, notes.append)
        for note in notes:
            plan_context.log.info(note)
        plan = dataclasses.replace(plan, pool_limits=limits)
        growth_mb = self._settings.max_worker_memory_growth_mb
        growth = (
            growth_mb * 2**20
            if growth_mb
            else int(plan.memory_bytes * MEMORY_HEADROOM / plan.cores)
        )
        yield DagsterEvent.engine_event(
            plan_context,
            f"Resource plan: {plan_summary(plan)}",
            EngineEventData(
                metadata={
                    "plan": dg.MetadataValue.md(plan.as_markdown()),
                    "environment overrides": dg.MetadataValue.json(env_messages),
                    "notes": dg.MetadataValue.json(notes),
                    "orchestrator pid": dg.MetadataValue.int(os.getpid()),
                    "orchestrator": dg.MetadataValue.text(orchestrator.token()),
                    "worker recycling": dg.MetadataValue.text(
                        f"after {self._settings.max_steps_per_worker} steps or {growth / 2**20:.0f} MiB growth"
                    ),
                }
            ),
        )

        heavy = {
            s.key
            for s in execution_plan.get_steps_to_execute_in_topo_order()
            if step_pool(s) in HEAVY_POOLS
        }
        symbol_stage = SymbolStage(
            plan_context.instance, run.run_id, heavy, plan.pool_limits.get(Pool.SYMBOLS, 1)
        )
        with ExitStack() as stack:
            concurrency = stack.enter_context(FastConcurrencyContext(plan_context.instance, run))
            active = stack.enter_context(
                BudgetedActiveExecution(
                    execution_plan,
                    retry_mode=self.retries,
                    instance_concurrency_context=concurrency,
                    step_dependency_config=self.step_dependency_config,
                    plan=plan,
                    ledger=ledger,
                    run_id=run.run_id,
                    symbol_stage=symbol_stage,
                )
            )
            workers = stack.enter_context(
                WorkerPool(
                    plan_context.reconstructable_job,
                    plan.blas_threads_cap,
                    max_workers=plan.cores,
                    max_steps=self._settings.max_steps_per_worker,
                    max_memory_growth=growth,
                )
            )
            stack.callback(symbol_stage.release)
            stack.callback(ledger.release_all, f"{run.run_id}:")
            waits = WaitReporter(instance, ledger, run.run_id)
            yield from self._orchestrate(plan_context, execution_plan, active, workers, waits)
        yield core_use_event(plan_context, ledger, run.run_id, active.step_use, self._settings)
        yield DagsterEvent.engine_event(
            plan_context,
            f"Budgeted executor finished: {workers.started} worker processes started, "
            f"{workers.recycled} recycled",
            EngineEventData(),
        )

    def _orchestrate(
        self,
        plan_context: PlanOrchestrationContext,
        execution_plan: ExecutionPlan,
        active: BudgetedActiveExecution,
        workers: WorkerPool,
        waits: WaitReporter,
    ) -> Iterator[DagsterEvent]:
        stopping = False
        errors: list[SerializableErrorInfo] = []
        next_schedule = 0.0
        while (not stopping and not active.is_complete) or workers.busy():
            if active.check_for_interrupts() and not stopping:
                stopping = True
                active.mark_interrupted()
                yield DagsterEvent.engine_event(
                    plan_context,
                    "Budgeted executor: termination requested, interrupting running steps",
                    EngineEventData.interrupted(list(workers.busy())),
                )
                for worker in workers.busy().values():
                    worker.term_event.set()

            # Admission costs a ledger transaction: do it when this run freed resources, and
            # otherwise every RESOURCE_POLL_S to see what other runs freed.
            if not stopping and (active.take_freed() or time.monotonic() >= next_schedule):
                for step in active.get_steps_to_execute():
                    yield from self._launch(plan_context, execution_plan, active, workers, step)
                yield from active.concurrency_event_iterator(plan_context)
                for message in waits.observe(active.blocked, active.ready_steps):
                    yield DagsterEvent.engine_event(
                        plan_context, f"{WAIT_PREFIX}{message}", EngineEventData()
                    )
                next_schedule = time.monotonic() + RESOURCE_POLL_S

            for step_key in workers.overdue():
                error = SerializableErrorInfo(
                    message=f"the worker for step {step_key!r} did not load the code location in "
                    f"{WORKER_START_TIMEOUT_S:.0f} s; check that the code location imports quickly",
                    stack=[],
                    cls_name="WorkerStartTimeout",
                )
                errors.append(error)
                yield from self._fail_step(
                    plan_context, active, workers, step_key, error, error.message
                )

            busy = workers.busy()
            if busy:
                waiting = stopping or active.waiting_for_resources()
                ready = wait(
                    [w.connection for w in busy.values()],
                    timeout=RESOURCE_POLL_S if waiting else IDLE_POLL_S,
                )
                for step_key, worker in busy.items():
                    if worker.connection in ready:
                        yield from self._drain(
                            plan_context, active, workers, step_key, worker, errors
                        )
            elif not active.is_complete and not stopping:
                time.sleep(RESOURCE_POLL_S)

            yield from active.plan_events_iterator(plan_context)

        if stopping and all(
            e.cls_name in {"DagsterExecutionInterruptedError", "KeyboardInterrupt"} for e in errors
        ):
            raise dg.DagsterExecutionInterruptedError()

    def _launch(
        self, plan_context, execution_plan, active, workers, step
    ) -> Iterator[DagsterEvent]:
        step_context = plan_context.for_step(step)
        threads = active.threads_by_step[step.key]
        budget = StepBudget(
            floor=threads,
            capacity=active.plan.cores,
            elastic=self._settings.elastic and step_pool(step) not in active.plan.explicit_threads,
            ledger_path=active.ledger.path,
            holder=active.ledger_holder(step.key),
        )
        try:
            worker, warm = workers.acquire(threads, step.key)
        except Exception:
            error = serializable_error_info_from_exc_info(sys.exc_info())
            yield from self._fail_step(
                plan_context, active, workers, step.key, error, "could not start a worker process"
            )
            return
        yield DagsterEvent.step_worker_starting(
            step_context,
            f'Running "{step.key}" with {threads} thread(s){", elastic" if budget.elastic else ""}'
            f" in {'warm' if warm else 'new'} worker {worker.pid}.",
            metadata={
                "threads": threads,
                "elastic": budget.elastic,
                "worker pid": worker.pid,
                "warm worker": warm,
            },
        )
        workers.submit(
            worker,
            StepCommand(
                recon_job=plan_context.reconstructable_job,
                dagster_run=plan_context.dagster_run,
                run_config=plan_context.run_config,
                step_key=step.key,
                instance_ref=plan_context.instance.get_ref(),
                retry_mode=self.retries,
                known_state=active.get_known_state(),
                repository_load_data=execution_plan.repository_load_data,
                environment=budget.environment(),
            ),
        )

    def _drain(
        self, plan_context, active, workers, step_key, worker, errors
    ) -> Iterator[DagsterEvent]:
        """Forward everything the worker has sent; finish the step when it says so or dies."""
        while worker.connection.poll():
            try:
                kind, payload = worker.connection.recv()
            except (EOFError, OSError):
                yield from self._worker_died(
                    plan_context, active, workers, step_key, worker, errors
                )
                return
            if kind == READY:
                workers.mark_ready(worker)
            elif kind == EVENT:
                yield payload
                active.handle_event(payload)
                if payload.is_resource_init_failure:
                    step_context = plan_context.for_step(active.get_step_by_key(step_key))
                    event = self.log_failure_or_retry_event_after_error(
                        step_context, payload.engine_event_data.error, active.get_known_state()
                    )
                    yield event
                    active.handle_event(event)
            elif kind == STEP_DONE:
                workers.finish(step_key, payload.memory_bytes)
                active.record_use(step_key, payload.cpu_s)
                active.release_step(step_key)
                active.verify_complete(plan_context, step_key)
                return
            elif kind == WORKER_ERROR:
                errors.append(payload)
                yield from self._fail_step(
                    plan_context,
                    active,
                    workers,
                    step_key,
                    payload,
                    "the worker process failed outside the step (loading the code location?)",
                )
                return

    def _worker_died(
        self, plan_context, active, workers, step_key, worker, errors
    ) -> Iterator[DagsterEvent]:
        worker.process.join(5)
        explanation = worker_death_explanation(worker.pid, step_key, worker.process.exitcode)
        error = SerializableErrorInfo(message=explanation, stack=[], cls_name="WorkerProcessDied")
        errors.append(error)
        yield from self._fail_step(plan_context, active, workers, step_key, error, explanation)

    def _fail_step(
        self, plan_context, active, workers, step_key, error, message
    ) -> Iterator[DagsterEvent]:
        """Fail (or retry) a step whose worker cannot finish it; never reuse that worker.

        An interrupted step reports its own failure before its worker's error follows it
        out; then only the worker is discarded (failing the step twice breaks the plan).
        """
        if not active.in_flight(step_key):
            workers.discard(step_key)
            active.release_step(step_key)
            return
        step_context = plan_context.for_step(active.get_step_by_key(step_key))
        yield DagsterEvent.engine_event(step_context, message, EngineEventData.engine_error(error))
        event = self.log_failure_or_retry_event_after_error(
            step_context, error, active.get_known_state()
        )
        yield event
        active.handle_event(event)
        workers.discard(step_key)
        active.release_step(step_key)
        active.verify_complete(plan_context, step_key)


def worker_death_explanation(pid: int, step_key: str, exit_code: int | None) -> str:
    if exit_code is not None and exit_code < 0:
        number = -exit_code
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown signal"
        how = f"was terminated by signal {number} ({name})"
        if number == signal.SIGKILL:
            how += ", which comes from the kernel's out-of-memory killer or from an operator"
    else:
        how = f"exited with code {exit_code}"
    return (
        f"worker process {pid} running step {step_key!r} {how}. The step failed; its cores and "
        "pool slot were released. Re-execute the run from the failure once the cause is fixed."
    )


# Run config overriding the plan; each key is a field of PlanSettings.
PLAN_CONFIG_DESCRIPTIONS = {
    "cores": "Cap on usable cores.",
    "tf_loads": "Limit of pool tf_loads.",
    "features": "Limit of pool features.",
    "symbols": "Symbols in heavy stages at once.",
    "training": "Limit of pool training.",
    "training_threads": "Threads per training step.",
    "feature_threads": "Threads per feature step.",
    "blas_threads": "Cap of BLAS/OpenMP threads per step.",
}
assert set(PLAN_CONFIG_DESCRIPTIONS) == {f.name for f in dataclasses.fields(PlanSettings)}

BUDGET_CONFIG = {
    **{
        name: dg.Field(dg.Noneable(int), default_value=None, description=description)
        for name, description in PLAN_CONFIG_DESCRIPTIONS.items()
    },
    "max_steps_per_worker": dg.Field(
        int,
        default_value=DEFAULT_MAX_STEPS_PER_WORKER,
        description="Replace a warm worker after this many steps.",
    ),
    "max_worker_memory_growth_mb": dg.Field(
        dg.Noneable(int),
        default_value=None,
        description="Replace a worker whose memory grew more than this; default: its share of memory.",
    ),
    "elastic": dg.Field(
        bool,
        default_value=True,
        description="Let steps that fan out lease idle cores per task (false: the static plan).",
    ),
    "retries": get_retries_config(),
}


@dg.executor(
    name="budgeted_executor",
    config_schema=BUDGET_CONFIG,
    requirements=dg.multiple_process_executor_requirements(),
)
def budgeted_executor(init_context: dg.InitExecutorContext) -> Executor:
    """Pools plus a per-step CPU budget, in warm worker processes; see forex_assets.executor."""
    config = init_context.executor_config
    return BudgetedExecutor(
        ExecutorSettings(
            plan=PlanSettings(**{name: config[name] for name in PLAN_CONFIG_DESCRIPTIONS}),
            retries=RetryMode.from_config(config["retries"]),
            max_steps_per_worker=config["max_steps_per_worker"],
            max_worker_memory_growth_mb=config["max_worker_memory_growth_mb"],
            elastic=config["elastic"],
        )
    )
