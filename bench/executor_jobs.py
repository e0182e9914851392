"""Dagster jobs for `bench.bench_executor`, importable by the worker processes it spawns.

Every job is defined at module level so that `dagster.reconstructable` can point at it
and a spawned (or forkserver-forked) step process can import it again. The same ops are
wired into one job per executor, because a job carries its executor definition.

- ``noop_*``: `NOOP_STEPS` independent ops that do nothing, to measure per-step overhead.
- ``lgbm_budget_*``: `LGBM_STEPS` independent ops in pool ``training``, each training a
  small LightGBM model with ``num_threads`` from `lightgbm_threads()` (the step's budget).
- ``lgbm_default_*``: the same ops without ``num_threads``, so LightGBM uses OpenMP's
  default thread count (all cores, unless the process environment says otherwise).

Each LightGBM op returns what it saw (its ``num_threads`` parameter, the OpenMP pool size
after training, the step budget in its environment, its pid and training time) as output
metadata, which the benchmark reads back from the run's event log to check the budgets.
"""

from __future__ import annotations

import os
import time
from typing import Any

import dagster as dg

from forex_assets.executor import budgeted_executor

NOOP_STEPS = 50
# Pool hand-off: steps of a fixed length in one pool of limit 1 (the mission's measurement:
# eight 0.35 s steps took 17.2 s of wall time under the stock executor).
HANDOFF_STEPS = 8
HANDOFF_SECONDS = 0.35
HANDOFF_POOL = "handoff"
LGBM_STEPS = 6
LGBM_ROWS = 60_000
LGBM_FEATURES = 30
# ~2 s per model on one thread of the 2-core development machine (~3 s with 200 rounds);
# kept short because the oversubscribed baseline runs 5-20x slower.
LGBM_ROUNDS = 120
LGBM_POOL = "training"

LGBM_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "num_leaves": 63,
    "learning_rate": 0.05,
    "verbose": -1,
    "seed": 0,
    "deterministic": True,
    "force_row_wise": True,
}


def fold_data(seed: int) -> tuple[Any, Any]:
    """A random regression problem of `LGBM_ROWS` x `LGBM_FEATURES` (deterministic per seed)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    features = rng.standard_normal((LGBM_ROWS, LGBM_FEATURES))
    weights = rng.standard_normal(LGBM_FEATURES)
    target = features @ weights + np.sin(3 * features[:, 0]) + 0.5 * rng.standard_normal(LGBM_ROWS)
    return features, target


def openmp_threads() -> int | None:
    """The largest OpenMP pool size that threadpoolctl reports in this process, if any."""
    from threadpoolctl import threadpool_info

    sizes = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]
    return max(sizes) if sizes else None


def train_fold(seed: int, num_threads: int | None) -> dict[str, Any]:
    """Train one model; `num_threads=None` leaves LightGBM on its OpenMP default.

    Returns what the training saw, for the benchmark's checks.
    """
    import lightgbm as lgb

    features, target = fold_data(seed)
    params = dict(LGBM_PARAMS)
    if num_threads is not None:
        params["num_threads"] = num_threads
    started = time.perf_counter()
    dataset = lgb.Dataset(features, target, params=params)
    booster = lgb.train(params, dataset, num_boost_round=LGBM_ROUNDS)
    seconds = time.perf_counter() - started
    return {
        "num_threads": -1 if num_threads is None else num_threads,
        "openmp_threads": openmp_threads() or 0,
        "step_budget": int(os.environ.get("FOREX_ASSETS_STEP_THREADS", "0") or 0),
        "pid": os.getpid(),
        "train_s": seconds,
        "trees": booster.num_trees(),
    }


def _noop_op(index: int) -> dg.OpDefinition:
    @dg.op(name=f"noop_{index:02d}")
    def noop() -> None:
        return None

    return noop


def _lgbm_op(index: int, budgeted: bool) -> dg.OpDefinition:
    kind = "budget" if budgeted else "default"

    @dg.op(name=f"lgbm_{kind}_{index}", pool=LGBM_POOL)
    def train() -> dg.Output[None]:
        if budgeted:
            from forex_assets.compute.thread_budget import lightgbm_threads

            num_threads: int | None = lightgbm_threads()["num_threads"]
        else:
            num_threads = None
        seen = train_fold(index, num_threads)
        return dg.Output(None, metadata=seen)

    return train


def _handoff_op(index: int) -> dg.OpDefinition:
    @dg.op(name=f"handoff_{index}", pool=HANDOFF_POOL)
    def hold() -> None:
        time.sleep(HANDOFF_SECONDS)

    return hold


NOOP_OPS = [_noop_op(i) for i in range(NOOP_STEPS)]
HANDOFF_OPS = [_handoff_op(i) for i in range(HANDOFF_STEPS)]
LGBM_BUDGET_OPS = [_lgbm_op(i, budgeted=True) for i in range(LGBM_STEPS)]
LGBM_DEFAULT_OPS = [_lgbm_op(i, budgeted=False) for i in range(LGBM_STEPS)]


def _all(ops: list[dg.OpDefinition]) -> None:
    for op in ops:
        op()


@dg.job(executor_def=dg.in_process_executor)
def noop_in_process() -> None:
    _all(NOOP_OPS)


@dg.job(executor_def=dg.multiprocess_executor)
def noop_multiprocess() -> None:
    _all(NOOP_OPS)


@dg.job(executor_def=budgeted_executor)
def noop_budgeted() -> None:
    _all(NOOP_OPS)


@dg.job(executor_def=dg.multiprocess_executor)
def handoff_multiprocess() -> None:
    _all(HANDOFF_OPS)


@dg.job(executor_def=budgeted_executor)
def handoff_budgeted() -> None:
    _all(HANDOFF_OPS)


@dg.job(executor_def=dg.multiprocess_executor)
def lgbm_budget_multiprocess() -> None:
    _all(LGBM_BUDGET_OPS)


@dg.job(executor_def=budgeted_executor)
def lgbm_budget_budgeted() -> None:
    _all(LGBM_BUDGET_OPS)


@dg.job(executor_def=dg.multiprocess_executor)
def lgbm_default_multiprocess() -> None:
    _all(LGBM_DEFAULT_OPS)


@dg.job(executor_def=budgeted_executor)
def lgbm_default_budgeted() -> None:
    _all(LGBM_DEFAULT_OPS)


JOBS = {
    job.name: job
    for job in (
        noop_in_process,
        noop_multiprocess,
        noop_budgeted,
        handoff_multiprocess,
        handoff_budgeted,
        lgbm_budget_multiprocess,
        lgbm_budget_budgeted,
        lgbm_default_multiprocess,
        lgbm_default_budgeted,
    )
}
