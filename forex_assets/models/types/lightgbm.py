"""LightGBM multiclass (`forex_assets.models.gradient_boosting`), saved as its text model."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from forex_assets.models.gradient_boosting import (
    GradientBoostingSettings,
    fit_gradient_boosting,
    load_gradient_boosting,
    predict_proba,
    save_gradient_boosting,
)
from forex_assets.models.model_spec import Fitted, ModelSpec, TrainingRows


def _fit(
    rows: TrainingRows, settings: GradientBoostingSettings, threads: int, seed: int
) -> Fitted[lgb.Booster]:
    return fit_gradient_boosting(
        rows.features,
        rows.classes,
        rows.validation,
        settings,
        list(rows.feature_names),
        threads,
        seed,
    )


def _predict_proba(booster: lgb.Booster, features: np.ndarray) -> np.ndarray:
    return predict_proba(booster, features).astype(np.float32)


SPEC: ModelSpec[GradientBoostingSettings, lgb.Booster] = ModelSpec(
    name="lightgbm",
    file="lightgbm.txt",
    format="lightgbm-text",
    kind="lightgbm",
    settings=GradientBoostingSettings,
    fit=_fit,
    predict_proba=_predict_proba,
    save=save_gradient_boosting,
    load=load_gradient_boosting,
    inputs=lambda booster: booster.num_feature(),
)
