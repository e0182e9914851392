"""LightGBM multiclass on the triple-barrier classes, stored as LightGBM's text model.

The text format is LightGBM's own, loads without unpickling anything, and is diffable.
Threads come from the caller's budget, never from LightGBM's default (every core).

Binning once per run. Before LightGBM trains it bins every feature (places up to
`max_bin` boundaries per column and maps each value to its bin). On the sample EURUSD
matrix (135k rows x 470 features) building a split's datasets took about 2.6 of its 15
LightGBM CPU seconds, and each of a run's 16 tasks (15 CPCV splits and the final
refit) did it again on mostly the same rows. Instead `prepare_binned_dataset` bins every
row of the run once (about 4.7 CPU seconds) and saves LightGBM's binary dataset (its own
format, not a pickle) beside the training arrays; each fit loads it and takes
`Dataset.subset` of its inner and of its validation rows (about 0.08 s), which copies
those rows' bins under the same boundaries (LightGBM 4's `LGBM_DatasetGetSubset`:
`CopyFeatureMapperFrom`, then `CopySubrow`) and bins nothing.

The consequence, said plainly: a split's bin boundaries now come from every row of the
run, its test rows included, where they came from its inner training rows. They are
quantiles of the unlabeled feature values only; no label, return or barrier outcome
reaches them, and the trees are fitted to the inner rows' labels and early-stopped on
the validation rows' labels as before. What the test rows do shape is where the
boundaries fall, denser where their feature values are dense (a volatility regime the
inner rows never saw, say): a look at the test period's feature distribution, not at
its outcomes. Models differ from per-split binning (other boundaries, other trees), not
in kind: `forex_assets_tests/models/test_cpcv_training.py` still finds a random walk's
honest score at chance with these bins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
from threadpoolctl import threadpool_limits

from forex_assets.compute.task_grants import granted_threads
from forex_assets.models.dataset import CLASSES, TrainingData
from forex_assets.models.model_spec import Fitted, PreparedDataError
from forex_assets.storage.atomic import atomic_write
from forex_assets.storage.damage import first_line
from forex_assets.storage.model_store import unreadable_model

# LightGBM's binary dataset of every row of a run, in the run's training-data folder.
BINNED_FILE = "lightgbm_dataset.bin"


@dataclass(frozen=True)
class GradientBoostingSettings:
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 200
    feature_fraction: float = 0.5
    bagging_fraction: float = 0.7
    lambda_l2: float = 1.0
    max_bin: int = 63
    max_rounds: int = 400
    early_stopping_rounds: int = 30

    def dataset_params(self, threads: int) -> dict[str, object]:
        """What LightGBM needs to bin a dataset: the bins depend on `max_bin` and (through
        the pre-filter of unsplittable features) `min_data_in_leaf`, never on the seed, so
        one binned dataset serves every split of a run. Where LightGBM samples rows to
        place the boundaries (over `bin_construct_sample_cnt`, 200,000 rows) it uses its
        fixed default data seed, so the bins are a function of the data and these settings.
        """
        return {
            "max_bin": self.max_bin,
            "min_data_in_leaf": self.min_data_in_leaf,
            "num_threads": threads,
            "verbosity": -1,
        }

    def params(self, threads: int, seed: int) -> dict[str, object]:
        return {
            **self.dataset_params(threads),
            "objective": "multiclass",
            "num_class": len(CLASSES),
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "seed": seed,
            "deterministic": True,
            "force_col_wise": True,
        }


def predict_proba(booster: lgb.Booster, features: np.ndarray) -> np.ndarray:
    """(rows, classes) probabilities of the trees kept by early stopping (all a saved
    booster holds: training keeps and saves only those)."""
    # LightGBM returns shape (0,) for no rows; keep (rows, classes) for every caller.
    proba = booster.predict(features)
    return np.asarray(proba).reshape(len(features), len(CLASSES))


def importance(booster: lgb.Booster) -> dict[str, float]:
    """Total split gain per feature."""
    gains = booster.feature_importance("gain")
    return dict(zip(booster.feature_name(), map(float, gains), strict=True))


def save_gradient_boosting(booster: lgb.Booster, path: Path) -> None:
    atomic_write(path, lambda temp: booster.save_model(str(temp)))


def binned_dataset(
    features: np.ndarray,
    classes: np.ndarray,
    feature_names: Sequence[str],
    settings: GradientBoostingSettings,
    threads: int,
) -> lgb.Dataset:
    """Every row binned (and labelled) once, for the fits that take subsets of it."""
    return lgb.Dataset(
        features,
        classes,
        feature_name=list(feature_names),
        params=settings.dataset_params(threads),
        free_raw_data=True,
    ).construct()


def prepare_binned_dataset(
    data_dir: Path, settings: GradientBoostingSettings, threads: int
) -> None:
    """Bin the `TrainingData` in `data_dir` and save it there as `BINNED_FILE`, replacing
    any earlier run's in one rename (see the module docstring for why)."""
    data = TrainingData.load(data_dir)
    dataset = binned_dataset(data.features, data.classes, data.feature_names, settings, threads)
    # LightGBM saves nothing, with a warning only, over a file that exists; the atomic
    # write's fresh temporary name never does.
    atomic_write(data_dir / BINNED_FILE, lambda temp: dataset.save_binary(temp))


def load_binned_dataset(
    data_dir: Path, settings: GradientBoostingSettings, threads: int
) -> lgb.Dataset:
    """The binned dataset `prepare_binned_dataset` saved in `data_dir`. Raises
    `PreparedDataError` naming the file when it is missing, cannot be read, was binned
    with another `max_bin`, or holds other rows, features or labels than the training
    data beside it: a fit must never train on the bins or labels of other data."""
    path = data_dir / BINNED_FILE
    if not path.is_file():
        raise PreparedDataError(
            f"{path} does not exist: LightGBM fits train on the run's binned dataset, "
            "written once per run by the lightgbm type's prepare hook. Call "
            "forex_assets.models.training.prepare_models(data_dir, settings, threads) "
            "before training splits on this folder (train_all does)."
        )
    try:
        dataset = lgb.Dataset(path, params=settings.dataset_params(threads)).construct()
    except lgb.basic.LightGBMError as error:
        raise PreparedDataError(
            f"{path} cannot be loaded as LightGBM's binary dataset with max_bin="
            f"{settings.max_bin} ({first_line(error)}); it is damaged or was binned with "
            "other settings. Prepare it again with prepare_models(data_dir, settings, "
            "threads) using this run's settings."
        ) from None
    difference = _difference(dataset, TrainingData.load(data_dir))
    if difference:
        raise PreparedDataError(
            f"{path} was binned from other data than the training data in {data_dir} "
            f"({difference}). Prepare it again with prepare_models(data_dir, settings, "
            "threads) over this folder."
        )
    return dataset


def _difference(dataset: lgb.Dataset, data: TrainingData) -> str:
    """How a loaded binned dataset differs from the training data it should hold, or ""."""
    if dataset.num_data() != data.rows:
        return f"{dataset.num_data()} rows where the data has {data.rows}"
    names = tuple(dataset.get_feature_name())
    if names != data.feature_names:
        return f"features {names[:3]}... where the data has {data.feature_names[:3]}..."
    if not np.array_equal(dataset.get_label(), data.classes):
        return "other labels"
    return ""


def fit_gradient_boosting(
    binned: lgb.Dataset,
    inner_rows: np.ndarray,
    validation_rows: np.ndarray,
    settings: GradientBoostingSettings,
    threads: int,
    seed: int,
) -> Fitted[lgb.Booster]:
    """Train on the `inner_rows` of `binned` (every row of the run, binned once), with
    early stopping on the (time-later) `validation_rows`.

    Both are subsets of `binned`: they reuse its bins, so the fit bins nothing and its
    trees are those of datasets built from the same rows with `reference=binned`.
    `lgb.train` keeps only the trees up to the best iteration, so the booster predicts,
    and saves, exactly the early-stopped model.
    """
    # num_threads 0: LightGBM takes the OpenMP pool's width, set here and widened between
    # rounds when the task is granted more cores; a width fixed in the parameters could
    # only change through reset_parameter, which reseeds bagging. Col-wise, deterministic
    # histograms make the trees the same on any width.
    params = {**settings.params(threads, seed), "num_threads": 0}
    with threadpool_limits(threads, user_api="openmp"):
        booster = lgb.train(
            params,
            binned.subset(inner_rows),
            num_boost_round=settings.max_rounds,
            valid_sets=[binned.subset(validation_rows)],
            callbacks=[
                lgb.early_stopping(settings.early_stopping_rounds, verbose=False),
                _widen_when_granted(threads),
            ],
        )
    best = booster.best_iteration or booster.current_iteration()
    loss = booster.best_score["valid_0"]["multi_logloss"]
    return Fitted(booster, best, float(loss), device="cpu", importance=importance(booster))


def _widen_when_granted(threads: int) -> Callable[[lgb.callback.CallbackEnv], None]:
    """A callback, before each boosting round, that widens the OpenMP pool to the cores the
    task has been granted since it started (`task_grants`)."""
    width = threads

    def widen(env: lgb.callback.CallbackEnv) -> None:
        nonlocal width
        granted = granted_threads(width)
        if granted > width:
            threadpool_limits(granted, user_api="openmp")
            width = granted

    widen.before_iteration = True  # type: ignore[attr-defined]
    return widen


def load_gradient_boosting(path: Path) -> lgb.Booster:
    """A saved booster; a missing or damaged file raises `StoredDataError` naming it."""
    try:
        return lgb.Booster(model_file=str(path))
    except lgb.basic.LightGBMError as error:
        raise unreadable_model(path, "a LightGBM text model", error) from None
