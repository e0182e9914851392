"""A small training run on a planted rule, for tests of what training leaves behind."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forex_assets.compute.thread_budget import STEP_THREADS_ENV
from forex_assets.models.cpcv_training import CpcvTraining, train_on_cpcv
from forex_assets.models.dataset import TrainingData
from forex_assets.models.gradient_boosting import GradientBoostingSettings
from forex_assets.models.neural_net_settings import NeuralNetSettings
from forex_assets.models.training import TrainingSettings
from forex_assets.storage.model_store import run_directory
from forex_assets.validation.cpcv import CpcvSettings, combinatorial_purged_cv

PLANTED_FEATURES = tuple(f"feature_{i}" for i in range(10))
PLANTED_STEP = timedelta(minutes=5)
PLANTED_START = datetime(2024, 1, 8, tzinfo=UTC)


def planted_matrix(rows: int, seed: int, start: datetime = PLANTED_START) -> pl.DataFrame:
    """A feature matrix of M5 rows from `start` whose triple-barrier label is planted in
    feature_0 (below -0.5: -1, above 0.5: +1, else 0); the other nine are noise. Labels
    end 3 bars after their row closes."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, len(PLANTED_FEATURES))).astype(np.float32)
    labels = np.where(features[:, 0] < -0.5, -1, np.where(features[:, 0] > 0.5, 1, 0))
    time = pl.datetime_range(
        start, start + (rows - 1) * PLANTED_STEP, PLANTED_STEP, time_unit="us", eager=True
    )
    return pl.DataFrame(
        {
            "time": time,
            "close_time": time + PLANTED_STEP,
            **dict(zip(PLANTED_FEATURES, features.T, strict=True)),
            "tb_label": labels.astype(np.int8),
            "tb_t1": time + 4 * PLANTED_STEP,
            "tb_return": rng.normal(0.0, 1e-3, rows),
        }
    )


@dataclass(frozen=True)
class TrainedRun:
    root: Path  # the model store the run's folder is in
    symbol: str
    run_id: str
    matrix: pl.DataFrame  # the feature matrix it trained on
    training: CpcvTraining


def train_small_run(home: Path) -> TrainedRun:
    """EURUSD trained by `train_on_cpcv` into `home / "models"`: 3,000 planted rows, 3
    CPCV splits + the final refit, a tiny LightGBM and MLP (about 10 s on 2 threads)."""
    settings = TrainingSettings(
        models={
            "lightgbm": GradientBoostingSettings(max_rounds=30, min_data_in_leaf=50),
            "mlp": NeuralNetSettings(max_epochs=3, hidden=(16,)),
        }
    )
    matrix = planted_matrix(3000, seed=0)
    data = TrainingData.from_matrix(matrix, list(PLANTED_FEATURES))
    plan = combinatorial_purged_cv(data.t0, data.t1, CpcvSettings(n_groups=3, test_groups=1))
    run_id = str(uuid.UUID(int=0x5EED))
    # For a session fixture, outside the per-test isolation: isolate here too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FOREX_ASSETS_HOME", str(home / "forex_home"))
        patch.setenv("FOREX_ASSETS_CORE_LEDGER", str(home / "core_ledger.sqlite"))
        patch.setenv(STEP_THREADS_ENV, "2")
        training = train_on_cpcv(
            data,
            plan,
            settings,
            np.full(data.rows, 1e-5),
            run_directory(home / "models", "EURUSD", run_id),
        )
    return TrainedRun(home / "models", "EURUSD", run_id, matrix, training)
