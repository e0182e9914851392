"""Training every CPCV split (and the final refit) in parallel inside the step's budget.

Each split is one task: every selected model type (`TrainingSettings.models`, by default
every registered one), early-stopped on the split's inner validation slice, then asked
for probabilities on the split's test rows. Tasks run in an `ElasticPool`: each task
starts with its share of the cores free at that moment (the step's floor plus idle
cores it leases), the final refit, which trains on every row, first and widest, so
processes x threads never exceed what the step holds (the seed's 8 x 16 layout on 16
cores is what this prevents) and no core idles while a split waits. Every task seeds its
models from the run's seed and its index, so its models and probabilities do not depend
on which worker ran it, in which order, or with how many threads (only the validation
loss LightGBM sums across its threads may differ in the last bit).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forex_assets.compute.elastic_pool import ElasticPool, Task, TaskRecord
from forex_assets.compute.thread_budget import step_threads
from forex_assets.models.dataset import TrainingData
from forex_assets.models.inner_validation import inner_validation_split
from forex_assets.models.model_spec import AnySpec, TrainingRows
from forex_assets.models.registry import model_spec, model_specs

FINAL_REFIT = -1


def split_name(index: int) -> str:
    """The folder, and ledger split, of a split's models: `split_03`, or `final`."""
    return "final" if index == FINAL_REFIT else f"split_{index:02d}"


def default_model_settings() -> dict[str, Any]:
    """Every registered model type with its default settings."""
    return {spec.name: spec.settings() for spec in model_specs()}


@dataclass(frozen=True)
class TrainingSettings:
    # The model types to train (registered names) and their settings.
    models: Mapping[str, Any] = field(default_factory=default_model_settings)
    inner_validation_share: float = 0.15
    seed: int = 7

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError(
                "TrainingSettings.models is empty; name at least one registered model type "
                f"({[spec.name for spec in model_specs()]})."
            )
        for name, settings in self.models.items():
            spec = model_spec(name)
            if not isinstance(settings, spec.settings):
                raise ValueError(
                    f"TrainingSettings.models[{name!r}] is a {type(settings).__name__}, but "
                    f"the {name} model type takes {spec.settings.__name__}; pass "
                    f"{spec.settings.__name__}(...) for it."
                )

    def selected(self) -> list[tuple[AnySpec, Any]]:
        """(spec, settings) of each model type to train, in registry order."""
        return [
            (spec, self.models[spec.name]) for spec in model_specs() if spec.name in self.models
        ]


@dataclass(frozen=True)
class SplitTask:
    index: int  # the CPCV split, or FINAL_REFIT for the model trained on every row
    train: np.ndarray
    test: np.ndarray
    data_dir: str
    out_dir: str
    settings: TrainingSettings


@dataclass(frozen=True)
class SplitResult:
    index: int
    test: np.ndarray
    proba: dict[str, np.ndarray]  # model -> (test rows, classes)
    best_iteration: dict[str, int]
    validation_loss: dict[str, float]
    importance: dict[str, dict[str, float]]  # model -> feature -> importance, where measured
    files: dict[str, str]
    devices: dict[str, str]
    train_rows: int
    seconds: float


def train_split(task: SplitTask) -> SplitResult:
    """Train every selected model type on one split; runs in a worker process, with the
    threads its pool gave it (`step_threads()`)."""
    started = time.perf_counter()
    threads = step_threads()
    data = TrainingData.load(Path(task.data_dir))
    inner, validation = inner_validation_split(
        task.train, data.t0, data.t1, task.settings.inner_validation_share
    )
    rows = TrainingRows(Path(task.data_dir), inner, validation)
    seed = task.settings.seed * 1000 + task.index + 1
    directory = Path(task.out_dir) / split_name(task.index)
    directory.mkdir(parents=True, exist_ok=True)
    x_test = np.asarray(data.features[task.test])
    trained = []
    for spec, settings in task.settings.selected():
        fitted = spec.fit(rows, settings, threads, seed)
        path = directory / spec.file
        spec.save(fitted.model, path)
        trained.append((spec, fitted, path))
    return SplitResult(
        index=task.index,
        test=task.test,
        proba={spec.name: spec.predict_proba(fit.model, x_test) for spec, fit, _ in trained},
        best_iteration={spec.name: fit.best_iteration for spec, fit, _ in trained},
        validation_loss={spec.name: fit.validation_loss for spec, fit, _ in trained},
        importance={
            spec.name: dict(fit.importance)
            for spec, fit, _ in trained
            if fit.importance is not None
        },
        files={spec.name: str(path) for spec, _, path in trained},
        devices={spec.name: fit.device for spec, fit, _ in trained},
        train_rows=int(inner.size),
        seconds=time.perf_counter() - started,
    )


# The final refit trains on every row; a CPCV split on (N - k) / N of them (4/6 by
# default): the refit is about this much heavier, which sets its start order and width.
FINAL_REFIT_WEIGHT = 1.5


def prepare_models(data_dir: Path, settings: TrainingSettings, threads: int) -> None:
    """Run each selected type's `prepare` hook over the run's spilled data, once per run
    and before any split trains: every task of the run then finds what it wrote in
    `data_dir` (LightGBM's binned dataset) instead of redoing it."""
    for spec, model_settings in settings.selected():
        if spec.prepare is not None:
            spec.prepare(data_dir, model_settings, threads)


def train_all(
    data_dir: Path,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: TrainingSettings,
    out_dir: Path,
    progress: Callable[[SplitResult], None] = lambda result: None,
    tasks_run: list[TaskRecord] | None = None,
    pool: ElasticPool | None = None,
) -> tuple[list[SplitResult], SplitResult]:
    """Every (train, test) split plus the final refit on all rows, in parallel.

    `data_dir` holds the `TrainingData` the workers map (see `TrainingData.spill`).
    Returns the split results in split order and the final refit's result; how each task
    ran (threads, leased cores, seconds, CPU seconds) is appended to `tasks_run`. The
    tasks run in the caller's `pool` where it has more work for the same workers (their
    imports, seconds of torch alone, are then paid once), else in a pool of their own.
    """
    everything = np.arange(TrainingData.load(data_dir).rows, dtype=np.int64)
    jobs = [(i, train, test) for i, (train, test) in enumerate(splits)]
    jobs.append((FINAL_REFIT, everything, np.zeros(0, dtype=np.int64)))
    tasks = [
        Task(
            split_name(i),
            functools.partial(
                train_split, SplitTask(i, train, test, str(data_dir), str(out_dir), settings)
            ),
            FINAL_REFIT_WEIGHT if i == FINAL_REFIT else 1.0,
            grows=True,  # both model types widen between rounds and batches
        )
        for i, train, test in jobs
    ]
    results: dict[int, SplitResult] = {}
    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(ElasticPool())
        # Before any task starts, in this process: the floor and every core it can lease.
        with pool.held_threads() as threads:
            prepare_models(data_dir, settings, threads)
        already = len(pool.records)
        for _, result in pool.run(tasks):
            results[result.index] = result
            progress(result)
    if tasks_run is not None:
        tasks_run.extend(pool.records[already:])
    final = results.pop(FINAL_REFIT)
    return [results[i] for i in range(len(splits))], final
