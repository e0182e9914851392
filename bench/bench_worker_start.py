"""Spawned worker start-up: a budgeted pool's workers ready for their first task.

Training splits and strategy islands run in spawned workers (`ElasticPool`);
each worker is a fresh interpreter that imports the module of the task it unpickles.
Ours: the workers import what the real tasks need (the training and island modules), and
nothing else, since the package root is inert. Anchor: the same workers also import the
code location (`forex_assets.definitions`, Dagster included), which is what every worker
paid while the package root imported it, measured side by side in this run.

Timed from opening the pool to closing it after one task per worker (closing joins every
worker, so each start counts); checked that our workers never load Dagster and the
anchor's do.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time

from bench.harness import BenchConfig, BenchResult, BenchRow, Measurement, check
from forex_assets.compute.elastic_pool import ElasticPool, Task
from forex_assets.compute.step_budget import StepBudget

DESCRIPTION = "spawned worker start-up: training/island workers with an inert package root"
DEFAULT_CONFIG = {"repeats": 3, "warmup": 1}
TASK_MODULES = ("forex_assets.models.training", "forex_assets.strategies.islands.replay")
CODE_LOCATION = "forex_assets.definitions"


def import_modules(modules: tuple[str, ...]) -> bool:
    """The worker's first task: import `modules`; says whether Dagster got loaded."""
    for module in modules:
        importlib.import_module(module)
    return "dagster" in sys.modules


def _start_pool(workers: int, modules: tuple[str, ...]) -> tuple[float, list[bool]]:
    started = time.perf_counter()
    with ElasticPool(max_threads=1) as pool:
        calls = [
            Task(f"import {i}", functools.partial(import_modules, modules)) for i in range(workers)
        ]
        loaded = pool.map(calls)
    # Closing the pool joins every worker, so a worker still starting while another ran
    # both tasks is timed too.
    return time.perf_counter() - started, loaded


def _measure(
    workers: int, modules: tuple[str, ...], config: BenchConfig
) -> tuple[Measurement, list[bool]]:
    for _ in range(config.warmup):
        _start_pool(workers, modules)
    samples, loaded = [], []
    for _ in range(max(1, config.repeats)):
        seconds, loaded = _start_pool(workers, modules)
        samples.append(seconds)
    return Measurement(min(samples), workers, tuple(samples)), loaded


def run(config: BenchConfig) -> BenchResult:
    result = BenchResult(name="worker_start", title="spawned worker start-up", unit="workers")
    workers = StepBudget.current().floor
    ours, ours_loaded = _measure(workers, TASK_MODULES, config)
    anchor, anchor_loaded = _measure(workers, (CODE_LOCATION, *TASK_MODULES), config)
    check(not any(ours_loaded), f"a worker importing {TASK_MODULES} loaded Dagster")
    check(all(anchor_loaded), f"a worker importing {CODE_LOCATION} did not load Dagster")
    result.checks.append("our workers never load Dagster; the anchor's always do")
    result.rows.append(
        BenchRow(
            f"pool of {workers} spawned workers, each importing the training and island modules",
            ours,
            anchor,
            "the same workers also importing the code location (the old package root)",
        )
    )
    return result
