"""Out-of-fold probabilities assembled into CPCV backtest paths.

A path takes, for each group, the predictions of one split that tested that group (the
CPCV path table says which), so every path is a full history of predictions made by
models that never trained on, or next to, the rows they predict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forex_assets.models.training import SplitResult


def path_probabilities(
    paths: np.ndarray,
    group_bounds: Sequence[tuple[int, int]],
    results: Sequence[SplitResult],
    model: str,
) -> np.ndarray:
    """(paths, rows, classes) out-of-fold probabilities of `model` on every path."""
    rows = group_bounds[-1][1]
    classes = results[0].proba[model].shape[1]
    out = np.full((paths.shape[0], rows, classes), np.nan, dtype=np.float32)
    for path, splits in enumerate(paths):
        for group, split in enumerate(splits):
            start, stop = group_bounds[group]
            result = results[int(split)]
            wanted = np.arange(start, stop)
            position = np.minimum(np.searchsorted(result.test, wanted), result.test.size - 1)
            if result.test.size == 0 or not np.array_equal(result.test[position], wanted):
                raise ValueError(
                    f"split {split} did not test group {group} (rows {start}..{stop - 1}), "
                    "but the path table assigns it; the plan and the results disagree."
                )
            out[path, start:stop] = result.proba[model][position]
    return out
