"""What a model type is to the pipeline: how to fit, score, save and load it.

Training, out-of-fold assembly, stacking, the ledger and the final model's loader only
see `ModelSpec`s, never a model by name, so a model type is added by one module under
`forex_assets.models.types` (see `forex_assets.models.registry`) and nothing else.
Every format a spec saves must load without unpickling (a model file may come from
anywhere a run folder was copied from).

A type whose fits repeat work that depends only on the run's data (LightGBM bins the
same feature matrix for every split) does it once in its `prepare` hook: training calls
it once per run, over the folder the run's `TrainingData` is spilled to, before any split
trains, and every fit of that run finds what it wrote there (`TrainingRows.data_dir`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from forex_assets.models.dataset import TrainingData

Settings = TypeVar("Settings")
Model = TypeVar("Model")


class PreparedDataError(RuntimeError):
    """What a type's `prepare` hook writes for a run is missing from the run's data folder,
    cannot be read, or does not match the training data there; the message names the file."""


@dataclass(frozen=True, eq=False)
class TrainingRows:
    """A split's inner training rows and the later rows early stopping watches, as row
    indices into the run's `TrainingData` spilled in `data_dir` (the folder every selected
    type's `prepare` hook has seen).

    The arrays are taken from the memory-mapped data on first use: a type that trains on
    what its hook prepared (LightGBM's binned dataset) never copies the feature matrix.
    """

    data_dir: Path
    inner_rows: np.ndarray  # sorted int64 row indices the model is fitted on
    validation_rows: np.ndarray  # sorted int64 row indices, after every inner row

    @cached_property
    def data(self) -> TrainingData:
        return TrainingData.load(self.data_dir)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.data.feature_names

    @cached_property
    def features(self) -> np.ndarray:
        """(inner rows, columns) float32, NaN where a feature is undefined."""
        return np.asarray(self.data.features[self.inner_rows])

    @cached_property
    def classes(self) -> np.ndarray:
        """int64 index into `forex_assets.models.dataset.CLASSES`, one per inner row."""
        return np.asarray(self.data.classes[self.inner_rows])

    @cached_property
    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """(features, classes) of the held-out slice."""
        rows = self.validation_rows
        return np.asarray(self.data.features[rows]), np.asarray(self.data.classes[rows])


@dataclass(frozen=True)
class Fitted(Generic[Model]):
    """A trained model with what its training reports to the ledger and the UI."""

    model: Model
    best_iteration: int  # the boosting round or epoch that early stopping kept
    validation_loss: float  # multiclass log-loss on the early-stopping rows
    device: str  # where it trained: "cpu", "cuda"
    importance: Mapping[str, float] | None = None  # per feature, for types that measure it


@dataclass(frozen=True)
class ModelSpec(Generic[Settings, Model]):
    """One model type. `file` is the name of what `save` writes in a split's folder (a
    file or a folder); `format` names that format in the model ledger."""

    name: str
    file: str
    format: str
    kind: str  # the Dagster asset kind of its library ("lightgbm", "pytorch")
    settings: type[Settings]  # a frozen dataclass; its defaults are the type's defaults
    fit: Callable[
        [TrainingRows, Settings, int, int], Fitted[Model]
    ]  # (rows, settings, threads, seed)
    predict_proba: Callable[[Model, np.ndarray], np.ndarray]  # float32 (rows, classes)
    save: Callable[[Model, Path], None]
    load: Callable[[Path], Model]  # raises StoredDataError naming a missing or damaged file
    inputs: Callable[[Model], int]  # how many feature columns the model reads
    # Once per training run, before any fit: (data_dir, settings, threads) -> None, writing
    # what the run's fits share into data_dir. Types without repeated work have none.
    prepare: Callable[[Path, Settings, int], None] | None = None


AnySpec = ModelSpec[Any, Any]
