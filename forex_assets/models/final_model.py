"""A training run's final model, loaded back from the model store to score new rows.

The final model is what a run leaves for use after research: the final refit of every
model type it trained (`<run>/final/<type file>`), the blender fitted on their
out-of-fold probabilities (`<run>/blender.json`, which names the types in order) and
`<run>/final_model.json`, the feature columns they read and the close time of the last
row they trained on. Scores of rows up to that time are in sample (the refit trained on
every row of its matrix), and say so. Every file loads without unpickling; a missing or
damaged one raises `StoredDataError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from forex_assets.features.feature_matrix import CLOSE_TIME
from forex_assets.market.bar_schema import TIME
from forex_assets.models.dataset import PROBABILITY_COLUMNS, feature_array
from forex_assets.models.model_spec import AnySpec
from forex_assets.models.registry import ModelTypeError, model_spec
from forex_assets.models.stacking import BLENDER_FILE, blend, load_blender
from forex_assets.models.training import FINAL_REFIT, split_name
from forex_assets.storage.atomic import atomic_write_bytes
from forex_assets.storage.damage import StoredDataError
from forex_assets.storage.model_store import MODEL_ASSET, is_run_id, run_path, unreadable_model

FINAL_MODEL_FILE = "final_model.json"
IN_SAMPLE = "in_sample"


class RunIdError(ValueError):
    """A run id that cannot name a run folder of the model store."""


class FeatureMismatchError(ValueError):
    """Rows to score lack feature columns the final model was trained on."""


def save_final_model(directory: Path, features: Sequence[str], trained_through_us: int) -> None:
    """Write `final_model.json` in a run folder whose final refit and blender are saved."""
    document = {"features": list(features), "trained_through_us": int(trained_through_us)}
    atomic_write_bytes(directory / FINAL_MODEL_FILE, json.dumps(document).encode())


@dataclass(frozen=True)
class FinalModel:
    symbol: str
    run_id: str
    directory: Path
    features: tuple[str, ...]
    trained_through_us: int  # close time of the last training row, epoch microseconds
    models: tuple[tuple[AnySpec, Any], ...]  # (type, loaded model) in the blender's order
    blender: np.ndarray

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec, _ in self.models)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(rows, classes) blended probabilities of rows of `self.features` columns."""
        probabilities = [spec.predict_proba(model, features) for spec, model in self.models]
        return blend(probabilities, self.blender)

    def score(self, matrix: pl.DataFrame) -> pl.DataFrame:
        """Feature-matrix rows scored: time, close_time, one probability column per class
        and whether the row was in the final refit's training period."""
        missing = [name for name in self.features if name not in matrix.columns]
        if missing:
            raise FeatureMismatchError(
                f"the rows to score lack {len(missing)} of the {len(self.features)} feature "
                f"columns {self.symbol} run {self.run_id} trained on (first: {missing[:5]}); "
                "the feature matrix was built with other feature settings. Score rows built "
                "with the training run's settings, or train again on the current matrix."
            )
        proba = self.predict_proba(feature_array(matrix, self.features))
        return matrix.select(TIME, CLOSE_TIME).with_columns(
            *(pl.Series(name, proba[:, i]) for i, name in enumerate(PROBABILITY_COLUMNS)),
            (pl.col(CLOSE_TIME).dt.epoch("us") <= self.trained_through_us).alias(IN_SAMPLE),
        )


def _read_manifest(path: Path) -> tuple[tuple[str, ...], int]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        features, through = document["features"], document["trained_through_us"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise unreadable_model(path, "a final model manifest (JSON)", error) from None
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        problem = ValueError(f"features is {type(features).__name__}, not a list of names")
        raise unreadable_model(path, "a final model manifest (JSON)", problem)
    if type(through) is not int:
        problem = ValueError(f"trained_through_us={through!r} is not epoch microseconds")
        raise unreadable_model(path, "a final model manifest (JSON)", problem)
    return tuple(features), through


def load_final_model(root: Path, symbol: str, run_id: str) -> FinalModel:
    """The final model `run_id` stored for `symbol` under the model store `root`."""
    if not is_run_id(run_id):
        raise RunIdError(
            f"run id {run_id!r} is not a Dagster run id (a UUID such as "
            "'0b1c7c4e-...'); the model store keeps one folder per run id."
        )
    directory = run_path(root, symbol, run_id)
    if not directory.is_dir():
        raise StoredDataError(
            MODEL_ASSET, symbol, directory, "does not exist: no run of that id stored models here"
        )
    manifest = directory / FINAL_MODEL_FILE
    features, trained_through_us = _read_manifest(manifest)
    blender_file = directory / BLENDER_FILE
    names, weights = load_blender(blender_file)
    models = []
    for name in names:
        try:
            spec = model_spec(name)
        except ModelTypeError as error:
            raise unreadable_model(
                blender_file, "a blender of registered model types", error
            ) from None
        model = spec.load(directory / split_name(FINAL_REFIT) / spec.file)
        if spec.inputs(model) != len(features):
            problem = ValueError(
                f"it lists {len(features)} features but the final {name} model reads "
                f"{spec.inputs(model)}; the two are not from one run"
            )
            raise unreadable_model(manifest, "a final model manifest (JSON)", problem)
        models.append((spec, model))
    return FinalModel(
        symbol, run_id, directory, features, trained_through_us, tuple(models), weights
    )
