"""A small job for `ray_budgeted_executor`; its steps run as Ray jobs and report what they saw.

Importing this module needs dagster-ray (its executor); the steps themselves also need Ray.
"""

import functools
import json
import os
import time
from pathlib import Path

import dagster as dg

from forex_assets.compute.thread_budget import budget_environment
from forex_assets.executor.ray_budgets import ray_budgeted_executor
from forex_assets_tests.executor.jobs_for_tests import PROBE_DIR_ENV

# Long enough that two steps holding more CPUs than the node has would visibly overlap.
HOLD_S = 1.0
# Long enough that the elastic probe's second task starts while its first still runs.
TASK_S = 3.0
RUNTIME_ENV_MARKER = "FOREX_TEST_RUNTIME_ENV"


def record_step(name: str) -> None:
    """Write this step's process, Ray identity, Ray CPU reservation and thread budget."""
    import numpy  # noqa: F401 (loads the BLAS pool that threadpoolctl reports)
    import polars
    import ray
    from ray.dashboard.modules.job.common import JOB_ACTOR_NAME_TEMPLATE
    from ray.util.state import list_actors, list_jobs
    from threadpoolctl import threadpool_info

    started = time.time()
    # The step is a Ray job's entrypoint (a driver): the job supervisor set RAY_ADDRESS.
    ray.init(logging_level="warning", log_to_driver=False)
    try:
        context = ray.get_runtime_context()
        job_id = context.get_job_id()
        (job,) = [j for j in list_jobs(detail=True) if j.job_id == job_id]
        # A driver has no assigned resources of its own: Ray reserves the entrypoint's CPUs
        # for the job's supervisor actor, which runs the entrypoint for as long as it lives.
        (supervisor,) = list_actors(
            filters=[("name", "=", JOB_ACTOR_NAME_TEMPLATE.format(job_id=job.submission_id))],
            detail=True,
        )
        ray_info = {
            "job_id": job_id,
            "node_id": context.get_node_id(),
            "submission_id": job.submission_id,
            "job_metadata": job.metadata,
            "supervisor_resources": supervisor.required_resources,
            "supervisor_state": supervisor.state,
        }
        time.sleep(HOLD_S)
    finally:
        ray.shutdown()
    record = {
        "step": name,
        "pid": os.getpid(),
        "started": started,
        "ended": time.time(),
        "ray": ray_info,
        "env": {k: os.environ.get(k) for k in budget_environment(1)},
        "runtime_env_marker": os.environ.get(RUNTIME_ENV_MARKER),
        "polars_threads": polars.thread_pool_size(),
        "blas_threads": sorted(
            {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
        ),
    }
    (Path(os.environ[PROBE_DIR_ENV]) / f"{name}.json").write_text(json.dumps(record))


def _held_task(seconds: float) -> int:
    """A task of the elastic probe: holds its width for a while and reports it."""
    from forex_assets.compute.thread_budget import step_threads

    time.sleep(seconds)
    return step_threads()


@dg.op(pool="features", out=dg.Out(dg.Nothing))
def features_probe() -> None:
    record_step("features_probe")


@dg.op(pool="training", out=dg.Out(dg.Nothing))
def training_probe() -> None:
    record_step("training_probe")


@dg.op(
    pool="features", ins={"after_features": dg.In(dg.Nothing), "after_training": dg.In(dg.Nothing)}
)
def elastic_probe() -> None:
    """A step that fans out, alone on the cluster: its second task leases a Ray CPU."""
    from forex_assets.compute.elastic_pool import ElasticPool, Task
    from forex_assets.compute.step_budget import StepBudget

    record_step("elastic_probe")
    budget = StepBudget.current()
    with ElasticPool(budget) as pool:
        widths = pool.map([Task(f"t{i}", functools.partial(_held_task, TASK_S)) for i in range(2)])
    tasks = {
        "holder": budget.holder,
        "ray_leases": budget.ray_leases,
        "widths": widths,
        "records": [r.as_json() for r in pool.records],
    }
    (Path(os.environ[PROBE_DIR_ENV]) / "elastic_probe_tasks.json").write_text(json.dumps(tasks))


@dg.job(executor_def=ray_budgeted_executor)
def ray_probe_job():
    elastic_probe(after_features=features_probe(), after_training=training_probe())


defs = dg.Definitions(jobs=[ray_probe_job])
