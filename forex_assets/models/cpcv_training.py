"""One symbol's CPCV training, end to end: train every split, assemble paths, blend, score.

The Dagster asset only gathers inputs and reports; everything between the feature matrix
and the scored out-of-fold paths happens here. The training arrays are spilled to a
temporary directory and memory-mapped, by this process and by every training worker, so
one copy lives in the page cache however many processes read it. What follows the
splits runs as one batch of tasks of the same `ElasticPool`, on the workers the training
warmed, over the cores it used: the paths' stacking blenders (a logistic regression per
group, seconds per path), the final refit's blender, and the scoring of each base model;
only the blend's scoring, which needs the stacked paths, and the overfitting judgement over
every strategy are left for this process.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forex_assets.compute.elastic_pool import ElasticPool, Task, TaskRecord
from forex_assets.market.fx_calendar import DEFAULT_CALENDAR, FxCalendar
from forex_assets.models.dataset import TrainingData
from forex_assets.models.evaluation import Evaluation, ModelScore, combine_scores, score_model
from forex_assets.models.final_model import save_final_model
from forex_assets.models.model_spec import AnySpec
from forex_assets.models.out_of_fold import path_probabilities
from forex_assets.models.stacking import (
    BLENDER_FILE,
    fit_blender,
    save_blender,
    time_ordered_stack,
)
from forex_assets.models.training import SplitResult, TrainingSettings, train_all
from forex_assets.validation.cpcv import CpcvPlan

BLEND = "blend"
# The after-training tasks' sizes relative to one path's stacking (2 years of EURUSD: a
# path 4.5 s, the final blender 3.4 s, one model's scoring 0.8 s): the longest start first,
# so the short ones fill the cores the last paths leave.
FINAL_BLENDER_WEIGHT = 0.75
SCORING_WEIGHT = 0.2


@dataclass(frozen=True)
class CpcvTraining:
    models: tuple[AnySpec, ...]  # the model types trained, in the blender's order
    results: list[SplitResult]
    final: SplitResult
    path_proba: dict[str, np.ndarray]  # model -> (paths, rows, classes), blend included
    evaluation: Evaluation
    blender_file: Path
    fingerprint: str
    feature_names: tuple[str, ...]
    rows: int
    tasks: tuple[TaskRecord, ...]  # how each split and stacking task ran: threads, leases, s, CPU


def train_on_cpcv(
    data: TrainingData,
    plan: CpcvPlan,
    settings: TrainingSettings,
    cost: np.ndarray,
    out_dir: Path,
    progress: Callable[[SplitResult], None] = lambda result: None,
    calendar: FxCalendar = DEFAULT_CALENDAR,
) -> CpcvTraining:
    """Train, assemble, blend and score; model files and the final model go to `out_dir`.
    The scored strategies' daily returns fall on `calendar`'s trading days.

    Pass `data` without keeping another reference to it: its arrays are replaced by the
    mapped copy, and the caller's would otherwise stay in memory for the whole training.
    """
    fingerprint = data.fingerprint()
    models = tuple(spec for spec, _ in settings.selected())
    names = [spec.name for spec in models]
    with tempfile.TemporaryDirectory(prefix="forex_assets_training_") as work:
        data_dir = Path(work) / "data"
        data = data.spill(data_dir)
        # One pool for the splits and what follows them: those reuse the warm workers.
        with ElasticPool() as pool:
            results, final = train_all(
                data_dir,
                [(s.train, s.test) for s in plan.splits],
                settings,
                out_dir,
                progress,
                pool=pool,
            )
            classes, t0, t1 = np.array(data.classes), np.array(data.t0), np.array(data.t1)
            path_proba = {
                model: path_probabilities(plan.paths, plan.group_bounds, results, model)
                for model in names
            }
            stacks = [
                Task(
                    f"stack_path_{path}",
                    functools.partial(
                        time_ordered_stack,
                        [path_proba[m][path] for m in names],
                        classes,
                        t0,
                        t1,
                        plan.group_bounds,
                    ),
                )
                for path in range(plan.n_paths)
            ]
            # The final refit's blender, fitted on every out-of-fold row once.
            blender = Task(
                "final_blender",
                functools.partial(fit_blender, [path_proba[m][0] for m in names], classes),
                FINAL_BLENDER_WEIGHT,
            )
            scorings = [
                Task(
                    f"score_{model}",
                    functools.partial(
                        _score_spilled, model, path_proba[model], data_dir, cost, calendar
                    ),
                    SCORING_WEIGHT,
                )
                for model in names
            ]
            # The fits and the scoring are single-threaded numpy.
            done = pool.map([*stacks, blender, *scorings], max_threads=1)
        tasks = tuple(pool.records)  # the splits', then the rest
        path_proba[BLEND] = np.stack(done[: len(stacks)])
        blender_weights = done[len(stacks)]
        scores: list[ModelScore] = done[len(stacks) + 1 :]
        scores.append(score_model(BLEND, path_proba[BLEND], data, cost, calendar=calendar))
        evaluation = combine_scores(scores)
        feature_names, rows = data.feature_names, data.rows
    # The manifest last, so a run folder that has it holds a complete final model.
    blender_file = out_dir / BLENDER_FILE
    save_blender(blender_weights, names, blender_file)
    save_final_model(out_dir, feature_names, int(t0.max()))
    return CpcvTraining(
        models,
        results,
        final,
        path_proba,
        evaluation,
        blender_file,
        fingerprint,
        feature_names,
        rows,
        tasks,
    )


def _score_spilled(
    model: str, proba: np.ndarray, data_dir: Path, cost: np.ndarray, calendar: FxCalendar
) -> ModelScore:
    """A pool task: one base model scored over the spilled data its worker maps."""
    return score_model(model, proba, TrainingData.load(data_dir), cost, calendar=calendar)
