"""Small jobs that exercise the budgeted executor; importable by its worker processes."""

import json
import os
import time
from pathlib import Path

import dagster as dg

from forex_assets.executor import budgeted_executor

STEP_SECONDS = 0.4
PROBE_DIR_ENV = "FOREX_TEST_PROBE_DIR"


def _probe_dir() -> Path:
    return Path(os.environ[PROBE_DIR_ENV])


def _sleeper(name: str, pool: str) -> dg.OpDefinition:
    @dg.op(name=name, pool=pool)
    def sleeper() -> None:
        time.sleep(STEP_SECONDS)

    return sleeper


@dg.job(executor_def=budgeted_executor)
def pool_job():
    for i in range(6):
        _sleeper(f"load_{i}", "tf_loads")()


@dg.job(executor_def=budgeted_executor)
def heavy_job():
    for i in range(3):
        _sleeper(f"train_{i}", "training")()


def _library_threads(name: str) -> dict:
    import lightgbm
    import numba
    import numpy as np
    import polars
    import torch
    from threadpoolctl import threadpool_info

    from forex_assets.compute.thread_budget import lightgbm_threads, step_threads

    x = np.random.default_rng(0).random((500, 4))
    y = (x[:, 0] > 0.5).astype(int)
    params = {"objective": "binary", "verbose": -1, **lightgbm_threads()}
    booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=3)
    report = {
        "step": name,
        "pid": os.getpid(),
        "step_threads": step_threads(),
        "torch": torch.get_num_threads(),
        "polars": polars.thread_pool_size(),
        "numba": numba.get_num_threads(),
        "lightgbm": int(booster.params["num_threads"]),
        "openmp": sorted(
            {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}
        ),
        "blas": sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}),
    }
    (_probe_dir() / f"{name}.json").write_text(json.dumps(report))
    return report


@dg.op(tags={"forex_assets/threads": "2"})
def probe_two_threads() -> None:
    _library_threads("two")


@dg.op(tags={"forex_assets/threads": "1"})
def probe_one_thread() -> None:
    _library_threads("one")


@dg.job(executor_def=budgeted_executor)
def probe_job():
    probe_two_threads()
    probe_one_thread()


def _started_then_wait(probes: str, index: int) -> None:
    (Path(probes) / f"killable_task_{index}.started").write_text("yes")
    time.sleep(120)


@dg.op(pool="tf_loads")
def killable() -> None:
    """An elastic step whose two tasks (one on its floor, one on a leased core) wait to be
    killed, unless the marker says a previous attempt already was."""
    import functools

    from forex_assets.compute.elastic_pool import ElasticPool, Task

    marker = _probe_dir() / "killed_once"
    if marker.exists():
        return
    (_probe_dir() / "killable.pid").write_text(str(os.getpid()))
    wait = functools.partial(_started_then_wait, str(_probe_dir()))
    with ElasticPool(max_threads=1) as pool:
        pool.map([Task(f"t{i}", functools.partial(wait, i)) for i in range(2)])


@dg.op
def downstream(_after) -> None:
    (_probe_dir() / "downstream_ran").write_text("yes")


@dg.op
def upstream_ok() -> int:
    return 1


@dg.job(executor_def=budgeted_executor)
def crash_job():
    killable()
    downstream(upstream_ok())


@dg.op(pool="training")
def stuck_training() -> None:
    """A heavy step (holds the run's `symbols` slot and a `training` slot) that never ends."""
    (_probe_dir() / "stuck_training.pid").write_text(str(os.getpid()))
    time.sleep(600)


@dg.job(executor_def=budgeted_executor)
def stuck_heavy_job():
    stuck_training()


@dg.op
def no_op() -> None:
    pass


@dg.job(executor_def=budgeted_executor)
def recycle_job():
    for i in range(5):
        no_op.alias(f"noop_{i}")()


@dg.op
def talkative() -> None:
    import sys

    print("stdout line from the step", flush=True)
    print("stderr line from the step", file=sys.stderr, flush=True)
    os.system("echo line from a child process")


@dg.job(executor_def=budgeted_executor)
def talkative_job():
    talkative()


FAN_OUT_TASKS = 8
FAN_OUT_TASK_S = 0.8


@dg.op(pool="training")
def fan_out() -> None:
    """An elastic step: tasks that lease idle cores; writes how each task ran."""
    import functools

    from forex_assets.compute.elastic_pool import ElasticPool, Task

    sleep = functools.partial(time.sleep, FAN_OUT_TASK_S)
    with ElasticPool() as pool:
        pool.map([Task(f"t{i}", sleep) for i in range(FAN_OUT_TASKS)])
    records = [r.as_json() for r in pool.records]
    (_probe_dir() / "fan_out.json").write_text(json.dumps(records))


@dg.op
def gate() -> int:
    time.sleep(1.5)
    return 1


@dg.op
def latecomer(_gate: int) -> None:
    """Becomes ready while the elastic step holds every idle core."""
    (_probe_dir() / "latecomer.json").write_text(json.dumps({"started": time.time()}))


@dg.job(executor_def=budgeted_executor)
def elastic_job():
    fan_out()
    latecomer(gate())


defs = dg.Definitions(
    jobs=[
        pool_job,
        heavy_job,
        probe_job,
        crash_job,
        stuck_heavy_job,
        recycle_job,
        talkative_job,
        elastic_job,
    ]
)
