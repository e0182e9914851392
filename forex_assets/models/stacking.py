"""A stacking blender over the base models' out-of-fold probabilities, fitted in time order.

Fitting one blender on a whole path would let it learn from rows after the ones it
blends. Instead each group is blended by a multinomial logistic regression fitted only
on the path's earlier groups (their rows whose labels had ended before the group starts);
the first group, with no history, gets the plain average of the models.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from forex_assets.storage.atomic import atomic_write_bytes
from forex_assets.storage.model_store import unreadable_model

PROBABILITY_FLOOR = 1e-6
BLENDER_FILE = "blender.json"
BLENDER_FORMAT = "json-weights"


def _design(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    logs = [np.log(np.clip(p, PROBABILITY_FLOOR, 1.0)) for p in probabilities]
    return np.hstack([*logs, np.ones((logs[0].shape[0], 1))])


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_blender(
    probabilities: Sequence[np.ndarray], classes: np.ndarray, l2: float = 1e-2
) -> np.ndarray:
    """Weights (inputs, classes) of a ridge-penalized multinomial logistic regression."""
    x = _design(probabilities)
    n_classes = probabilities[0].shape[1]
    target = np.eye(n_classes)[classes]

    def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
        weights = flat.reshape(x.shape[1], n_classes)
        proba = _softmax(x @ weights)
        value = -np.mean(np.sum(target * np.log(np.clip(proba, 1e-15, 1.0)), axis=1))
        gradient = x.T @ (proba - target) / x.shape[0]
        penalty = weights.copy()
        penalty[-1] = 0.0  # the intercept is not shrunk
        return value + 0.5 * l2 * np.sum(penalty**2), (gradient + l2 * penalty).ravel()

    start = np.zeros(x.shape[1] * n_classes)
    fitted = minimize(loss, start, jac=True, method="L-BFGS-B")
    return fitted.x.reshape(x.shape[1], n_classes)


def blend(probabilities: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    return _softmax(_design(probabilities) @ weights)


def time_ordered_stack(
    probabilities: Sequence[np.ndarray],
    classes: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    group_bounds: Sequence[tuple[int, int]],
) -> np.ndarray:
    """Blended probabilities of one path, each group blended by a model of its past."""
    out = np.empty_like(probabilities[0], dtype=np.float32)
    for group, (start, stop) in enumerate(group_bounds):
        pieces = [p[start:stop] for p in probabilities]
        history = np.flatnonzero(t1[:start] < t0[start]) if group else np.zeros(0, int)
        if history.size < 100:
            out[start:stop] = np.mean(pieces, axis=0)
            continue
        weights = fit_blender([p[history] for p in probabilities], classes[history])
        out[start:stop] = blend(pieces, weights)
    return out


def save_blender(weights: np.ndarray, models: Sequence[str], path: Path) -> None:
    """The final blender as JSON: the models it blends, in order, and its weight matrix."""
    document = {"models": list(models), "weights": weights.tolist()}
    atomic_write_bytes(path, json.dumps(document).encode())


def load_blender(path: Path) -> tuple[list[str], np.ndarray]:
    """A saved blender; a missing or damaged file, or weights that do not fit the models
    it names, raise `StoredDataError` naming it."""
    try:
        document = json.loads(path.read_text())
        models = document["models"]
        weights = np.asarray(document["weights"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise unreadable_model(path, "a blender (JSON models and weights)", error) from None
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        problem = ValueError(f"models is {models!r}, not a list of model type names")
        raise unreadable_model(path, "a blender (JSON models and weights)", problem)
    # One row per model and class (its log-probabilities) plus the intercept.
    if weights.ndim != 2 or weights.shape[0] != len(models) * weights.shape[1] + 1:
        problem = ValueError(
            f"weights of shape {weights.shape} cannot blend the {len(models)} models "
            f"{models}: that takes (models x classes + 1, classes)"
        )
        raise unreadable_model(path, "a blender (JSON models and weights)", problem)
    return models, weights
