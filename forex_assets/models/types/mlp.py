"""The torch MLP (`forex_assets.models.neural_net`): a state_dict plus its JSON spec.

torch is imported inside these functions, by the processes that fit or load a network
only: every process of the code location imports this module, and torch would cost each
one about a second and a few hundred MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forex_assets.models.model_spec import Fitted, ModelSpec, TrainingRows
from forex_assets.models.neural_net_settings import NeuralNetSettings

if TYPE_CHECKING:
    from forex_assets.models.neural_net import FittedNet


def _fit(rows: TrainingRows, settings: NeuralNetSettings, threads: int, seed: int) -> Fitted:
    from forex_assets.models.neural_net import default_device, fit_neural_net

    device = default_device()
    net = fit_neural_net(
        rows.features, rows.classes, rows.validation, settings, threads, seed, device
    )
    return Fitted(net, net.best_epoch, net.validation_loss, device=str(device))


def _predict_proba(net: FittedNet, features: np.ndarray) -> np.ndarray:
    return net.predict_proba(features).astype(np.float32)


def _save(net: FittedNet, directory: Path) -> None:
    net.save(directory)


def _load(directory: Path) -> FittedNet:
    from forex_assets.models.neural_net import load_neural_net

    return load_neural_net(directory)


SPEC: ModelSpec[NeuralNetSettings, FittedNet] = ModelSpec(
    name="mlp",
    file="mlp",
    format="torch-state-dict+json",
    kind="pytorch",
    settings=NeuralNetSettings,
    fit=_fit,
    predict_proba=_predict_proba,
    save=_save,
    load=_load,
    inputs=lambda net: int(net.standardizer.mean.size),
)
