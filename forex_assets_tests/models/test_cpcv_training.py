"""Purged CPCV catches a planted look-ahead leak, and without it random walks stay at chance,
with the bins of every split placed over all rows (test rows included), as training does."""

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from forex_assets.features.feature_config import parse_indicators
from forex_assets.features.indicator_set import compute_indicators
from forex_assets.features.labels import LabelSettings, triple_barrier_labels
from forex_assets.metrics.classification import roc_auc_ovr
from forex_assets.models.dataset import TrainingData
from forex_assets.models.gradient_boosting import (
    GradientBoostingSettings,
    binned_dataset,
    fit_gradient_boosting,
    predict_proba,
)
from forex_assets.models.inner_validation import inner_validation_split
from forex_assets.validation.cpcv import CpcvSettings, combinatorial_purged_cv

HONEST = parse_indicators(
    {"rsi": [14], "log_return": [1, 5, 20], "zscore": [20], "natr": [14], "candle": True}
)
BOOSTING = GradientBoostingSettings(max_rounds=60, early_stopping_rounds=10, min_data_in_leaf=50)


def random_walk_bars(rows: int, seed: int) -> pl.DataFrame:
    """M5 bars of a driftless Gaussian random walk: no feature can predict its future."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 4e-4, rows)))
    open_ = np.concatenate(([1.1], close[:-1]))
    wick = np.abs(rng.normal(0.0, 2e-4, (2, rows)))
    time = pl.datetime_range(
        datetime(2024, 1, 1, tzinfo=UTC), interval="5m", eager=True, time_unit="us",
        end=datetime(2030, 1, 1, tzinfo=UTC),
    ).head(rows)  # fmt: skip
    return pl.DataFrame(
        {
            "time": time,
            "close_time": time.dt.offset_by("5m"),
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
            "complete": np.ones(rows, dtype=bool),
        }
    )


@pytest.fixture(scope="module")
def labeled() -> tuple[pl.DataFrame, list[str]]:
    bars = random_walk_bars(12_000, seed=3)
    features = compute_indicators(bars, HONEST)
    labels = triple_barrier_labels(bars, LabelSettings())
    frame = (
        features.join(labels, on="time")
        .slice(100)
        .filter(pl.col("tb_label").is_not_null())
        # The leak: the row's own future label, as a feature.
        .with_columns(pl.col("tb_label").cast(pl.Float32).alias("leak"))
    )
    honest = [c for c in features.columns if c not in ("time", "close_time", "complete")]
    return frame, honest


def out_of_fold_auc(frame: pl.DataFrame, columns: list[str]) -> float:
    """Macro AUC of LightGBM's out-of-fold probabilities on the first CPCV path, every
    split fitted on one dataset binned over all rows, as a run's splits are."""
    data = TrainingData.from_matrix(frame, columns)
    plan = combinatorial_purged_cv(data.t0, data.t1, CpcvSettings(n_groups=6, test_groups=2))
    binned = binned_dataset(data.features, data.classes, columns, BOOSTING, threads=1)
    proba = np.full((data.rows, 3), np.nan)
    for group, split_index in enumerate(plan.paths[0]):
        split = plan.splits[int(split_index)]
        inner, validation = inner_validation_split(split.train, data.t0, data.t1, 0.15)
        fitted = fit_gradient_boosting(binned, inner, validation, BOOSTING, threads=1, seed=1)
        start, stop = plan.group_bounds[group]
        proba[start:stop] = predict_proba(fitted.model, data.features[start:stop])
    assert not np.isnan(proba).any()
    return roc_auc_ovr(data.classes, proba)


def test_planted_leak_is_caught_and_the_honest_score_is_chance(labeled):
    frame, honest = labeled
    leaky = out_of_fold_auc(frame, [*honest, "leak"])
    clean = out_of_fold_auc(frame, honest)
    assert leaky > 0.99  # the leak predicts every label
    assert abs(clean - 0.5) < 0.03  # a random walk's future is not in its past
