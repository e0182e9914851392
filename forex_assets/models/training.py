"""Training every CPCV split (and the final refit) in parallel inside the step's budget.

Each split is one task: LightGBM and the MLP, early-stopped on the split's inner
validation slice, then asked for probabilities on the split's test rows. Tasks run in a
`budgeted_process_pool`: with B threads for the step and S tasks, each task gets
max(1, B // S) threads and B // threads tasks run at once, so processes x threads never
exceed the budget (the seed's 8 x 16 layout on 16 cores is what this prevents). Every
task seeds its models from the run's seed and its index, so results do not depend on
which worker ran it or in which order.

torch is imported by the workers only (inside `train_split`): this module is loaded by
every process of the code location, and torch would cost each one about a second and a
few hundred MB.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forex_assets.compute.thread_budget import step_threads
from forex_assets.compute.worker_pool import budgeted_process_pool
from forex_assets.models.dataset import TrainingData
from forex_assets.models.gradient_boosting import GradientBoostingSettings, fit_gradient_boosting
from forex_assets.models.inner_validation import inner_validation_split
from forex_assets.models.neural_net_settings import NeuralNetSettings

GRADIENT_BOOSTING = "lightgbm"
NEURAL_NET = "mlp"
BASE_MODELS = (GRADIENT_BOOSTING, NEURAL_NET)
FINAL_REFIT = -1
LIGHTGBM_FILE = "lightgbm.txt"
MLP_DIRECTORY = "mlp"


@dataclass(frozen=True)
class TrainingSettings:
    gradient_boosting: GradientBoostingSettings = field(default_factory=GradientBoostingSettings)
    neural_net: NeuralNetSettings = field(default_factory=NeuralNetSettings)
    inner_validation_share: float = 0.15
    seed: int = 7


@dataclass(frozen=True)
class SplitTask:
    index: int  # the CPCV split, or FINAL_REFIT for the model trained on every row
    train: np.ndarray
    test: np.ndarray
    data_dir: str
    out_dir: str
    settings: TrainingSettings
    threads: int

    @property
    def name(self) -> str:
        return "final" if self.index == FINAL_REFIT else f"split_{self.index:02d}"


@dataclass(frozen=True)
class SplitResult:
    index: int
    test: np.ndarray
    proba: dict[str, np.ndarray]  # model -> (test rows, classes)
    best_iteration: dict[str, int]
    validation_loss: dict[str, float]
    importance: dict[str, float]  # LightGBM gain per feature
    files: dict[str, str]
    train_rows: int
    seconds: float
    device: str


def train_split(task: SplitTask) -> SplitResult:
    """Train both models on one split; runs in a worker process."""
    from forex_assets.models.neural_net import default_device, fit_neural_net  # torch: see module

    started = time.perf_counter()
    data = TrainingData.load(Path(task.data_dir))
    inner, validation = inner_validation_split(
        task.train, data.t0, data.t1, task.settings.inner_validation_share
    )
    x_inner, y_inner = np.asarray(data.features[inner]), np.asarray(data.classes[inner])
    held_out = (np.asarray(data.features[validation]), np.asarray(data.classes[validation]))
    seed = task.settings.seed * 1000 + task.index + 1
    names = list(data.feature_names)
    booster = fit_gradient_boosting(
        x_inner, y_inner, held_out, task.settings.gradient_boosting, names, task.threads, seed
    )
    device = default_device()
    net = fit_neural_net(
        x_inner, y_inner, held_out, task.settings.neural_net, task.threads, seed, device
    )
    directory = Path(task.out_dir) / task.name
    directory.mkdir(parents=True, exist_ok=True)
    booster.save(directory / LIGHTGBM_FILE)
    net.save(directory / MLP_DIRECTORY)
    x_test = np.asarray(data.features[task.test])
    return SplitResult(
        index=task.index,
        test=task.test,
        proba={
            GRADIENT_BOOSTING: booster.predict_proba(x_test).astype(np.float32),
            NEURAL_NET: net.predict_proba(x_test).astype(np.float32),
        },
        best_iteration={GRADIENT_BOOSTING: booster.best_iteration, NEURAL_NET: net.best_epoch},
        validation_loss={
            GRADIENT_BOOSTING: booster.validation_loss,
            NEURAL_NET: net.validation_loss,
        },
        importance=booster.importance(),
        files={
            GRADIENT_BOOSTING: str(directory / LIGHTGBM_FILE),
            NEURAL_NET: str(directory / MLP_DIRECTORY),
        },
        train_rows=int(inner.size),
        seconds=time.perf_counter() - started,
        device=str(device),
    )


def threads_per_task(tasks: int, budget: int | None = None) -> int:
    """Threads each task gets so that all tasks run with the budget fully used."""
    budget = budget or step_threads()
    return max(1, budget // max(1, tasks))


def train_all(
    data_dir: Path,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: TrainingSettings,
    out_dir: Path,
    progress: Callable[[SplitResult], None] = lambda result: None,
) -> tuple[list[SplitResult], SplitResult]:
    """Every (train, test) split plus the final refit on all rows, in parallel.

    `data_dir` holds the `TrainingData` the workers map (see `TrainingData.spill`).
    Returns the split results in split order and the final refit's result.
    """
    everything = np.arange(TrainingData.load(data_dir).rows, dtype=np.int64)
    jobs = [(i, train, test) for i, (train, test) in enumerate(splits)]
    jobs.append((FINAL_REFIT, everything, np.zeros(0, dtype=np.int64)))
    threads = threads_per_task(len(jobs))
    tasks = [
        SplitTask(i, train, test, str(data_dir), str(out_dir), settings, threads)
        for i, train, test in jobs
    ]
    results: dict[int, SplitResult] = {}
    with budgeted_process_pool(threads_per_task=threads, tasks=len(tasks)) as pool:
        # The final refit is the longest task: start it first.
        ordered = [tasks[-1], *tasks[:-1]]
        futures = [pool.submit(train_split, task) for task in ordered]
        for future in as_completed(futures):
            result = future.result()
            results[result.index] = result
            progress(result)
    final = results.pop(FINAL_REFIT)
    return [results[i] for i in range(len(splits))], final
