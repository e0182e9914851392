"""LightGBM multiclass on the triple-barrier classes, stored as LightGBM's text model.

The text format is LightGBM's own, loads without unpickling anything, and is diffable.
Threads come from the caller's budget, never from LightGBM's default (every core).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from forex_assets.models.dataset import CLASSES
from forex_assets.storage.model_store import unreadable_model


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

    def params(self, threads: int, seed: int) -> dict[str, object]:
        return {
            "objective": "multiclass",
            "num_class": len(CLASSES),
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "max_bin": self.max_bin,
            "num_threads": threads,
            "seed": seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }


@dataclass(frozen=True)
class FittedBooster:
    booster: lgb.Booster
    best_iteration: int
    validation_loss: float

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        # LightGBM returns shape (0,) for no rows; keep (rows, classes) for every caller.
        proba = self.booster.predict(features, num_iteration=self.best_iteration)
        return np.asarray(proba).reshape(len(features), len(CLASSES))

    def save(self, path: Path) -> None:
        self.booster.save_model(str(path), num_iteration=self.best_iteration)

    def importance(self) -> dict[str, float]:
        gains = self.booster.feature_importance("gain", iteration=self.best_iteration)
        return dict(zip(self.booster.feature_name(), map(float, gains), strict=True))


def fit_gradient_boosting(
    features: np.ndarray,
    classes: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    settings: GradientBoostingSettings,
    feature_names: list[str],
    threads: int,
    seed: int,
) -> FittedBooster:
    """Train with early stopping on the (time-later) validation rows."""
    params = settings.params(threads, seed)
    train_set = lgb.Dataset(
        features, classes, feature_name=feature_names, params=params, free_raw_data=True
    )
    valid_set = lgb.Dataset(*validation, reference=train_set, params=params)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=settings.max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    loss = booster.best_score["valid_0"]["multi_logloss"]
    return FittedBooster(booster, best, float(loss))


def load_gradient_boosting(path: Path) -> lgb.Booster:
    """A saved booster; a missing or damaged file raises `StoredDataError` naming it."""
    try:
        return lgb.Booster(model_file=str(path))
    except lgb.basic.LightGBMError as error:
        raise unreadable_model(path, "a LightGBM text model", error) from None
