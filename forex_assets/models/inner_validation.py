"""The inner validation slice that early stopping watches, carved from a split's training rows.

Early stopping on rows mixed in time with the training rows would reward memorizing the
neighbours of each validation row (their labels overlap). The slice is the latest
`share` of the training rows, and inner-training rows whose label ends after the slice
starts are purged, the same rule CPCV applies to its test groups.
"""

from __future__ import annotations

import numpy as np


def inner_validation_split(
    train: np.ndarray, t0: np.ndarray, t1: np.ndarray, share: float
) -> tuple[np.ndarray, np.ndarray]:
    """(inner training rows, validation rows) of the sorted training row indices `train`."""
    if not 0.0 < share < 0.5:
        raise ValueError(
            f"inner validation share={share!r} must be in (0, 0.5): it is the latest part of "
            "each split's training rows held out for early stopping."
        )
    count = max(1, round(share * train.size))
    if train.size - count < 2:
        raise ValueError(
            f"a split with {train.size} training rows cannot hold out {count} for early "
            "stopping; use fewer CPCV groups or more data."
        )
    validation = train[-count:]
    inner = train[:-count]
    starts = t0[validation[0]]
    inner = inner[t1[inner] < starts]
    if inner.size == 0:
        raise ValueError(
            f"all {train.size - count} inner-training rows have labels ending at or after the "
            f"early-stopping slice's start (t0={starts}); the labels' horizon is longer than "
            "the training data. Shorten the label horizon or use fewer CPCV groups."
        )
    return inner, validation
