"""What a model type is to the pipeline: how to fit, score, save and load it.

Training, out-of-fold assembly, stacking, the ledger and the final model's loader only
see `ModelSpec`s, never a model by name, so a model type is added by one module under
`forex_assets.models.types` (see `forex_assets.models.registry`) and nothing else.
Every format a spec saves must load without unpickling (a model file may come from
anywhere a run folder was copied from).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

Settings = TypeVar("Settings")
Model = TypeVar("Model")


@dataclass(frozen=True)
class TrainingRows:
    """A split's inner training rows and the later rows early stopping watches."""

    features: np.ndarray  # (rows, columns) float32, NaN where a feature is undefined
    classes: np.ndarray  # int64 index into `forex_assets.models.dataset.CLASSES`
    validation: tuple[np.ndarray, np.ndarray]  # (features, classes) of the held-out slice
    feature_names: tuple[str, ...]


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


AnySpec = ModelSpec[Any, Any]
