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
from forex_assets.models.model_spec import Fitted
from forex_assets.storage.atomic import atomic_write
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


def fit_gradient_boosting(
    features: np.ndarray,
    classes: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    settings: GradientBoostingSettings,
    feature_names: list[str],
    threads: int,
    seed: int,
) -> Fitted[lgb.Booster]:
    """Train with early stopping on the (time-later) validation rows.

    `lgb.train` keeps only the trees up to the best iteration, so the booster predicts,
    and saves, exactly the early-stopped model.
    """
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
    return Fitted(booster, best, float(loss), device="cpu", importance=importance(booster))


def load_gradient_boosting(path: Path) -> lgb.Booster:
    """A saved booster; a missing or damaged file raises `StoredDataError` naming it."""
    try:
        return lgb.Booster(model_file=str(path))
    except lgb.basic.LightGBMError as error:
        raise unreadable_model(path, "a LightGBM text model", error) from None
