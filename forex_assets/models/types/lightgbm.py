"""LightGBM multiclass (`forex_assets.models.gradient_boosting`), saved as its text model.

Every fit of a run trains on one binned dataset of all the run's rows, which the
`prepare` hook bins once per run and saves in the run's training-data folder (see
`forex_assets.models.gradient_boosting` for why, and what it means for the bins).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from forex_assets.models.gradient_boosting import (
    GradientBoostingSettings,
    fit_gradient_boosting,
    load_binned_dataset,
    load_gradient_boosting,
    predict_proba,
    prepare_binned_dataset,
    save_gradient_boosting,
)
from forex_assets.models.model_spec import Fitted, ModelSpec, TrainingRows


def _fit(
    rows: TrainingRows, settings: GradientBoostingSettings, threads: int, seed: int
) -> Fitted[lgb.Booster]:
    binned = load_binned_dataset(rows.data_dir, settings, threads)
    return fit_gradient_boosting(
        binned, rows.inner_rows, rows.validation_rows, settings, threads, seed
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
    prepare=prepare_binned_dataset,
)
