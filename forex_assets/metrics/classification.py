"""Classification scores for out-of-fold model predictions.

Plain numpy so the same functions score CPCV folds, whole backtests and notebooks. They
raise on inputs that cannot be scored (mismatched lengths, labels outside the class range)
because a silently broadcast or truncated score looks like a real one, but return NaN for
scores that are undefined on valid data (an AUC on a fold holding a single class), which a
caller can expect and skip.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


class ScoreInputError(ValueError):
    """Labels or predictions that cannot be scored; the message names what was passed."""


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of predictions equal to the label."""
    y_true, y_pred = _paired_1d(y_true, y_pred, "y_pred")
    return float(np.mean(y_true == y_pred))


def log_loss(y_true: np.ndarray, proba: np.ndarray, eps: float = 1e-15) -> float:
    """Mean negative log-probability given to the true class.

    Probabilities are clipped to [eps, 1 - eps] so one confident miss costs -log(eps)
    instead of infinity, then each row is renormalized so clipping cannot hand the model
    probability mass it did not predict.
    """
    proba = _probability_matrix(proba, y_true)
    labels = _class_indices(y_true, proba.shape[1])
    if not 0 < eps < 0.5:
        raise ScoreInputError(f"eps={eps!r} must lie in (0, 0.5) to clip probabilities.")
    clipped = np.clip(proba, eps, 1 - eps)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(clipped[np.arange(labels.size), labels])))


def roc_auc(y_binary: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half.

    Computed from the Mann-Whitney rank sum with average ranks for ties, O(n log n).
    With only one class present there are no positive-negative pairs and the AUC is
    undefined: NaN, not 0.5, because 0.5 would enter fold averages as a measured
    "no skill" score and pull them toward chance.
    """
    y_binary, score = _paired_1d(y_binary, score, "score")
    values = np.unique(y_binary)
    if not np.isin(values, (0, 1)).all():
        raise ScoreInputError(
            f"y_binary holds {values[~np.isin(values, (0, 1))][:5].tolist()}; "
            "roc_auc needs 0/1 labels (1 = positive); use roc_auc_ovr for several classes."
        )
    if np.isnan(score).any():
        raise ScoreInputError("score holds NaN values, which have no rank; drop those samples.")
    positive = y_binary == 1
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = rankdata(score)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc_ovr(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro one-vs-rest AUC over the classes present in `y_true`.

    Classes absent from the labels have no positives to rank and are left out rather than
    counted as NaN or 0.5; NaN only when fewer than two classes are present.
    """
    proba = _probability_matrix(proba, y_true)
    labels = _class_indices(y_true, proba.shape[1])
    present = np.unique(labels)
    if present.size < 2:
        return float("nan")
    return float(np.mean([roc_auc(labels == c, proba[:, c]) for c in present]))


def _paired_1d(y: np.ndarray, other: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    other = np.asarray(other)
    if y.ndim != 1 or other.shape != y.shape:
        raise ScoreInputError(
            f"labels of shape {y.shape} and {name} of shape {other.shape} must be 1-D arrays "
            "of the same length, one entry per sample."
        )
    if y.size == 0:
        raise ScoreInputError("no samples to score: labels are empty.")
    return y, other


def _probability_matrix(proba: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    proba = np.array(proba, dtype=np.float64)
    n = np.shape(y_true)[0] if np.ndim(y_true) == 1 else None
    if proba.ndim != 2 or proba.shape[0] != n or proba.shape[1] < 2:
        raise ScoreInputError(
            f"proba of shape {proba.shape} does not fit labels of shape {np.shape(y_true)}: "
            "pass one row per label and one column per class (at least 2), column c = "
            "probability of class c."
        )
    if n == 0:
        raise ScoreInputError("no samples to score: labels are empty.")
    if not (np.isfinite(proba).all() and (proba >= 0).all()):
        raise ScoreInputError("proba holds negative, NaN or infinite values; pass probabilities.")
    return proba


def _class_indices(y_true: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels as int64 indices, refusing values that are not 0..n_classes-1."""
    y = np.asarray(y_true)
    integral = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))
    )
    outside = integral and ((y < 0) | (y >= n_classes)).any()
    if not integral or outside:
        raise ScoreInputError(
            f"y_true holds {np.unique(y)[:5].tolist()}; with {n_classes} probability columns "
            f"labels must be class indices 0..{n_classes - 1} (map e.g. -1/0/1 to 0/1/2)."
        )
    return y.astype(np.int64)
