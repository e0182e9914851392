"""CPCV training of one symbol: every split of N=6, k=2 (15 splits) plus the final refit.

Ours: `train_all`, the tasks in an `ElasticPool` (each task's width from the cores free
when it starts and the tasks left; processes x threads = the machine's cores). Anchor: the same tasks and models in
a plain sequential loop with the libraries' default threading (LightGBM and torch each
use every core), which is what a script calling them in a loop gets.

Ours bins the data for LightGBM once per run (`prepare_models`) and every task trains on
those bins; the anchor's loop trains on the same prepared folder (a task needs it).
Before timing, both must produce probabilities for every test row, and ours must be
reproducible (a second run of one split gives identical probabilities). CPU seconds are
the process's and its finished workers' (`getrusage`): the work done, whatever the
layout. Peak memory is the summed resident memory of the step's process tree (the
process and its workers), sampled while ours runs. The 16-core comparison (1 core vs 16) needs the lent device
machine and is skipped elsewhere.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.feature_chain import feature_matrix_from_m1
from bench.harness import BenchConfig, BenchResult, BenchRow, Measurement, check
from bench.process_tree import TreeMemorySampler
from forex_assets.compute.elastic_pool import TaskRecord, task_shape_summary
from forex_assets.compute.thread_budget import STEP_THREADS_ENV
from forex_assets.features.feature_config import FeatureSettings
from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.models.dataset import TrainingData
from forex_assets.models.training import (
    FINAL_REFIT,
    SplitTask,
    TrainingSettings,
    train_all,
    train_split,
)
from forex_assets.validation.cpcv import CpcvSettings, combinatorial_purged_cv

DESCRIPTION = (
    "CPCV training (15 splits + refit, every model type): budgeted pool vs sequential loop"
)
# Both sides train 16 models pairs of minutes each: one timed run.
DEFAULT_CONFIG = {"repeats": 1}
MEMORY_TARGET_BYTES = 4 * 2**30
BIG_MACHINE_CORES = 16


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (the workers)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run(config: BenchConfig) -> BenchResult:
    result = BenchResult(
        name="training", title="CPCV N=6, k=2 training of one symbol", unit="splits"
    )
    m1 = generate_sample_m1(config.symbol, years=config.years)
    matrix = feature_matrix_from_m1(m1, FeatureSettings())
    data = TrainingData.from_matrix(matrix.frame, list(matrix.feature_columns))
    del m1, matrix  # the step holds the matrix and the training arrays, nothing else
    plan = combinatorial_purged_cv(data.t0, data.t1, CpcvSettings(n_groups=6, test_groups=2))
    splits = [(s.train, s.test) for s in plan.splits]
    settings = TrainingSettings()
    cores = _cores()
    result.notes.append(
        f"data: {config.years:g} years of {config.symbol} M1 -> {data.rows:,} M5 rows x "
        f"{len(data.feature_names)} features; {len(splits)} splits + final refit; {cores} cores"
    )

    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        data = data.spill(data_dir)  # as train_on_cpcv does
        os.environ[STEP_THREADS_ENV] = str(cores)
        try:
            with TreeMemorySampler() as memory:
                started, cpu = time.perf_counter(), _cpu_seconds()
                tasks_run: list[TaskRecord] = []
                results, final = train_all(
                    data_dir, splits, settings, work / "ours_out", tasks_run=tasks_run
                )
                ours_seconds = time.perf_counter() - started
            ours_cpu = _cpu_seconds() - cpu
        finally:
            os.environ.pop(STEP_THREADS_ENV, None)
        for (_, test), split_result in zip(splits, results, strict=True):
            for model in settings.models:
                proba = split_result.proba[model]
                check(proba.shape == (test.size, 3), f"split {split_result.index}: wrong shape")
                check(bool(np.allclose(proba.sum(axis=1), 1.0, atol=1e-4)), "rows must sum to 1")
        data_dir = str(data_dir)
        os.environ[STEP_THREADS_ENV] = "1"  # another width than ours: the same models
        try:
            again = train_split(
                SplitTask(0, splits[0][0], splits[0][1], data_dir, str(work / "again"), settings)
            )
        finally:
            os.environ.pop(STEP_THREADS_ENV, None)
        for model in settings.models:
            check(
                bool(np.array_equal(again.proba[model], results[0].proba[model])),
                f"{model}: a second run of split 0 gave different probabilities",
            )
        result.checks.append(
            "every split's models predict every test row (probabilities sum to 1); split 0 "
            "retrained alone reproduces ours bit for bit"
        )

        tasks = [
            SplitTask(i, train, test, data_dir, str(work / "anchor_out"), settings)
            for i, (train, test) in enumerate(splits)
        ]
        everything = np.arange(data.rows, dtype=np.int64)
        tasks.append(
            SplitTask(
                FINAL_REFIT,
                everything,
                everything[:0],
                data_dir,
                str(work / "anchor_out"),
                settings,
            )
        )
        started, cpu = time.perf_counter(), _cpu_seconds()
        anchor_results = [train_split(task) for task in tasks]
        anchor_seconds = time.perf_counter() - started
        anchor_cpu = _cpu_seconds() - cpu
        check(len(anchor_results) == len(results) + 1, "the anchor skipped a task")

    n_tasks = len(splits) + 1
    result.rows.append(
        BenchRow(
            f"{len(splits)} splits + refit, {cores} cores",
            Measurement(ours_seconds, n_tasks, (ours_seconds,)),
            Measurement(anchor_seconds, n_tasks, (anchor_seconds,)),
            "sequential loop, library default threads",
        )
    )
    met = "met" if memory.peak_bytes < MEMORY_TARGET_BYTES else "MISSED"
    result.notes.append(
        f"peak memory of the training process tree (summed PSS): {memory.peak_bytes / 2**30:.2f} GiB "
        f"over {memory.peak_processes} processes (target 4 GiB, {met})"
    )
    result.notes.append(
        f"ours: {n_tasks} tasks, {task_shape_summary(tasks_run)}; split seconds "
        f"{', '.join(f'{r.seconds:.0f}' for r in results)}; final refit {final.seconds:.0f} s"
    )
    result.notes.append(
        f"CPU seconds: ours {ours_cpu:.0f} (binning once included), anchor {anchor_cpu:.0f}; "
        "mean validation log-loss of the splits, ours: "
        + ", ".join(
            f"{model} {np.mean([r.validation_loss[model] for r in results]):.4f}"
            for model in settings.models
        )
    )
    if cores >= BIG_MACHINE_CORES:
        result.notes.append(
            "16+ cores: rerun with FOREX_ASSETS_CORES=1 for the 1-core time of the same work"
        )
    else:
        result.rows.append(
            BenchRow.skip(
                "1 core vs 16 cores, same CPCV training",
                f"needs 16 cores, this machine has {cores} (run on the lent device machine)",
            )
        )
    return result
