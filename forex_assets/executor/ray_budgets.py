"""Running steps on a Ray cluster under the same per-step CPU budgets as `budgeted_executor`.

Why it is built this way:

- **dagster-ray's executor, with its step handler subclassed.** `dagster_ray.ray_executor`
  submits each step as a Ray job and reads the job's reservation (`entrypoint_num_cpus`)
  from the op tag `dagster-ray/config`; it has no other per-step hook. A budget is only
  known at run time (run config, environment overrides, the machine), so it cannot be
  written into op tags when the code is defined. The handler therefore puts the budget
  into that same tag, per step, just before dagster-ray launches it, and leaves job
  submission, naming, health checks and termination to dagster-ray.
- **The local executor's functions decide.** The plan comes from `resolve_plan` and a
  step's threads from `requested_threads` (pool share, `forex_assets/threads` tag), so a
  step gets the same number on Ray as in a local warm worker. The plan's pool limits are
  written into the instance as the local executor does, because here Dagster's own
  instance pools are what admit steps.
- **Ray reserves CPUs, it does not limit threads.** So the budget also travels as the
  step process's environment (`budget_environment`, what local workers are spawned with),
  which libraries that size their pools at import (polars, OpenMP, numba) read before
  any of our code runs, and the step process narrows already-loaded libraries with
  `apply_budget`, as `step_worker` does, before handing over to Dagster's
  `api execute_step`. That is why the job's entry point is this module.

- **Elastic steps lease Ray CPUs.** A step's Ray job reserves its floor; a step that fans
  out (`ElasticPool`) is told, through the same environment, its name and that it
  leases from Ray (`StepBudget(ray_leases=True)`), and each task's extra CPUs are a
  Ray placement group on the step's node (`compute.ray_leases`): the CPUs Ray has
  reserved for a step are always its floor plus what it leases. `elastic: false` keeps
  every step at its floor, as the static plan does locally.

The plan describes the machine the run starts on (its cores cap every budget). Ray
nodes should have at least that many CPUs, else a wide step waits forever in Ray's
queue. The core ledger and the `symbols` stage slot are machine-local and not used
here: Ray's scheduler accounts for the cluster's CPUs.
"""

import dataclasses
import os
import sys
from collections.abc import Iterator, Sequence

import dagster as dg
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.step import ExecutionStep
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.base import Executor
from dagster._core.executor.step_delegating import StepDelegatingExecutor, StepHandlerContext
from dagster._record import copy
from dagster_ray.configs import USER_DEFINED_RAY_KEY, RayExecutionConfig
from dagster_ray.core.executor import RayExecutorConfig, RayStepHandler
from dagster_ray.core.run_launcher import RayRunLauncher

from forex_assets.compute.overrides import resolve_plan
from forex_assets.compute.plan import PlanSettings, ResourcePlan
from forex_assets.compute.step_budget import StepBudget
from forex_assets.compute.thread_budget import (
    BLAS_THREAD_VARIABLES,
    STEP_THREADS_ENV,
    apply_budget,
    budget_environment,
)
from forex_assets.executor.budgeted import (
    BUDGET_CONFIG,
    PLAN_CONFIG_DESCRIPTIONS,
    plan_summary,
)
from forex_assets.executor.scheduling import (
    requested_threads,
    step_pool,
    sync_instance_pool_limits,
)

STEP_ENTRY_MODULE = "forex_assets.executor.ray_budgets"


def ray_step_requests(
    steps: Sequence[ExecutionStep], plan: ResourcePlan, run_id: str, elastic: bool = True
) -> dict[str, RayExecutionConfig]:
    """Each step's Ray request: its thread budget as CPUs and as its process environment,
    with the budget an elastic step leases more Ray CPUs under (`StepBudget`)."""
    requests = {}
    for step in steps:
        threads = requested_threads(step, plan)
        budget = StepBudget(
            floor=threads,
            capacity=plan.cores,
            elastic=elastic and step_pool(step) not in plan.explicit_threads,
            holder=f"{run_id}:{step.key}",
            ray_leases=True,
        )
        requests[step.key] = RayExecutionConfig(
            num_cpus=threads,
            runtime_env={
                "env_vars": {
                    **budget_environment(threads, plan.blas_threads_cap),
                    **budget.environment(),
                }
            },
        )
    return requests


def with_budget(
    own: RayExecutionConfig, request: RayExecutionConfig, executor_runtime_env: dict
) -> RayExecutionConfig:
    """An op's own `dagster-ray/config` with the budget's CPUs and thread variables.

    The op keeps its GPUs, memory, custom resources and runtime_env. dagster-ray uses an
    op's runtime_env instead of the executor's; as the budget gives every op one, the
    executor's is the starting point where the op has none.
    """
    runtime_env = dict(own.runtime_env or executor_runtime_env)
    runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **request.runtime_env["env_vars"]}
    return own.model_copy(update={"num_cpus": request.num_cpus, "runtime_env": runtime_env})


class BudgetedRayStepHandler(RayStepHandler):
    """dagster-ray's step handler, launching every step with its budget."""

    plan: ResourcePlan | None = None  # set by the executor when the run starts
    elastic: bool = True  # the run config's `elastic`, set with the plan

    @property
    def name(self) -> str:
        return "BudgetedRayStepHandler"

    def launch_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        assert self.plan is not None, "the executor sets the plan before launching steps"
        step_key = self._get_step_key(step_handler_context)
        step_context = step_handler_context.get_step_context(step_key)
        step = step_context.step
        run_id = step_handler_context.dagster_run.run_id
        request = ray_step_requests([step], self.plan, run_id, self.elastic)[step_key]
        config = with_budget(RayExecutionConfig.from_tags(step.tags), request, self.runtime_env)
        budgeted_step = step._replace(
            tags={**step.tags, USER_DEFINED_RAY_KEY: config.model_dump_json(exclude_none=True)}
        )
        args = step_handler_context.execute_step_args
        origin = args.job_origin
        entry_point = [origin.executable_path, "-m", STEP_ENTRY_MODULE]
        args = copy(
            args,
            job_origin=origin._replace(
                repository_origin=origin.repository_origin._replace(entry_point=entry_point)
            ),
        )
        DagsterEvent.engine_event(
            step_context,
            f'Submitting "{step_key}" to Ray with num_cpus={request.num_cpus:g}, its thread budget.',
            EngineEventData(metadata={"num_cpus": request.num_cpus}),
        )
        yield from super().launch_step(
            StepHandlerContext(
                step_handler_context.instance,
                step_handler_context._plan_context,  # no public accessor
                [budgeted_step],
                args,
                step_handler_context.dagster_run,
            )
        )


class BudgetedRayExecutor(StepDelegatingExecutor):
    """Resolves the plan when the run starts, then delegates steps to the Ray handler."""

    def __init__(
        self,
        step_handler: BudgetedRayStepHandler,
        settings: PlanSettings,
        elastic: bool = True,
        **kwargs,
    ):
        super().__init__(step_handler, **kwargs)
        self._budget_handler = step_handler
        self._plan_settings = settings
        self._elastic = elastic

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        plan, env_messages = resolve_plan(self._plan_settings)
        notes: list[str] = []
        limits = sync_instance_pool_limits(plan_context.instance, plan, notes.append)
        plan = dataclasses.replace(plan, pool_limits=limits)
        self._budget_handler.plan = plan
        self._budget_handler.elastic = self._elastic
        # StepDelegatingExecutor yields what it reads back from the event log, so events
        # are logged here, not yielded (yielding would duplicate them).
        DagsterEvent.engine_event(
            plan_context,
            f"Resource plan for Ray (threads are Ray CPUs): {plan_summary(plan)}",
            EngineEventData(
                metadata={
                    "plan": dg.MetadataValue.md(plan.as_markdown()),
                    "environment overrides": dg.MetadataValue.json(env_messages),
                    "notes": dg.MetadataValue.json(notes),
                }
            ),
        )
        yield from super().execute(plan_context, execution_plan)


RAY_BUDGET_CONFIG = {
    "ray": RayExecutorConfig.to_config_schema().as_field(),
    **{name: BUDGET_CONFIG[name] for name in (*PLAN_CONFIG_DESCRIPTIONS, "elastic", "retries")},
}


@dg.executor(
    name="ray_budgeted_executor",
    config_schema=RAY_BUDGET_CONFIG,
    requirements=dg.multiple_process_executor_requirements(),
)
def ray_budgeted_executor(init_context: dg.InitExecutorContext) -> Executor:
    """Steps as Ray jobs, each reserving its thread budget in CPUs; see this module."""
    from ray.job_submission import JobSubmissionClient

    config = init_context.executor_config
    ray_config = RayExecutorConfig(**config["ray"])
    if ray_config.num_cpus is not None:
        raise dg.DagsterInvariantViolationError(
            "ray.num_cpus would give every step the same CPUs; each step's CPUs are its thread "
            "budget (set training_threads / feature_threads, or the forex_assets/threads tag)."
        )
    launcher = init_context.instance.run_launcher
    if ray_config.inherit_job_submission_client_from_ray_run_launcher and isinstance(
        launcher, RayRunLauncher
    ):
        client = launcher.client
    else:
        client = JobSubmissionClient(
            ray_config.address,
            metadata=ray_config.metadata,
            headers=ray_config.headers,
            cookies=ray_config.cookies,
        )
    handler = BudgetedRayStepHandler(
        client=client,
        env_vars=ray_config.env_vars,
        runtime_env=ray_config.runtime_env,
        num_cpus=None,
        num_gpus=ray_config.num_gpus,
        memory=ray_config.memory,
        resources=ray_config.resources,
    )
    return BudgetedRayExecutor(
        handler,
        PlanSettings(**{name: config[name] for name in PLAN_CONFIG_DESCRIPTIONS}),
        elastic=config["elastic"],
        retries=RetryMode.from_config(config["retries"]),
        should_verify_step=True,
    )


def _run_step_process() -> None:
    """A step's process on Ray: the budget first, as in a local warm worker, then Dagster."""
    threads = os.environ.get(STEP_THREADS_ENV, "")
    if threads.isdecimal() and int(threads) > 0:
        # The BLAS variables hold min(threads, plan's BLAS cap): passing them back as the
        # cap reproduces the worker's call exactly.
        apply_budget(int(threads), int(os.environ[BLAS_THREAD_VARIABLES[0]]))
    from dagster._cli import main

    sys.argv[0] = "dagster"
    main()


if __name__ == "__main__":
    _run_step_process()
