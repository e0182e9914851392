"""The training arrays of one symbol, shared with split workers through memory maps.

Fifteen CPCV splits trained by several worker processes all read the same feature
matrix. Pickling it to each worker would copy it per task; instead it is written once as
`.npy` files and every worker maps them read-only, so the operating system keeps one
copy in its page cache however many workers read it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

# Triple-barrier labels -1/0/+1 as class indices 0/1/2.
CLASSES = (-1, 0, 1)
# The columns of stored probabilities, one per class: p_-1, p_+0, p_+1.
PROBABILITY_COLUMNS = tuple(f"p_{c:+d}" for c in CLASSES)
_ARRAYS = ("features", "classes", "t0", "t1", "trade_return")


def feature_array(matrix: pl.DataFrame, feature_names: Sequence[str]) -> np.ndarray:
    """The model inputs of feature-matrix rows, in `feature_names` order: float32, a null
    (no completed bar of that timeframe yet) as NaN, the way every model was trained."""
    return np.ascontiguousarray(
        matrix.select(feature_names).to_numpy(order="c").astype(np.float32, copy=False)
    )


@dataclass(frozen=True)
class TrainingData:
    features: np.ndarray  # (rows, columns) float32, NaN where a feature is undefined
    classes: np.ndarray  # int64 class index into CLASSES
    t0: np.ndarray  # int64 us: when each row is known (its bar's close)
    t1: np.ndarray  # int64 us: when its label is decided
    trade_return: np.ndarray  # float64: entry-to-exit return of the triple-barrier trade
    feature_names: tuple[str, ...]

    @property
    def rows(self) -> int:
        return int(self.classes.size)

    @classmethod
    def from_matrix(cls, matrix: pl.DataFrame, feature_names: list[str]) -> TrainingData:
        missing = [
            c for c in (*feature_names, "tb_label", "tb_t1", "tb_return") if c not in matrix.columns
        ]
        if missing:
            raise KeyError(
                f"the feature matrix lacks {missing}; it must come from the feature_matrix "
                "asset (features plus triple-barrier labels)."
            )
        labels = matrix.get_column("tb_label").to_numpy()
        return cls(
            features=feature_array(matrix, feature_names),
            classes=np.searchsorted(CLASSES, labels).astype(np.int64),
            t0=matrix.get_column("close_time").dt.epoch("us").to_numpy(),
            t1=matrix.get_column("tb_t1").dt.epoch("us").to_numpy(),
            trade_return=matrix.get_column("tb_return").cast(pl.Float64).to_numpy(),
            feature_names=tuple(feature_names),
        )

    def fingerprint(self) -> str:
        """A content hash of everything a model learns from, for the model ledger."""
        digest = hashlib.sha256()
        for name in _ARRAYS:
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        digest.update("\0".join(self.feature_names).encode())
        return digest.hexdigest()[:16]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self, name))
        (directory / "feature_names.txt").write_text("\n".join(self.feature_names))

    def spill(self, directory: Path) -> TrainingData:
        """Save to `directory` and return the memory-mapped copy, freeing this one's arrays
        for the page cache that every training worker shares."""
        self.save(directory)
        return TrainingData.load(directory)

    @classmethod
    def load(cls, directory: Path) -> TrainingData:
        """Map the arrays saved by `save` read-only (no copy until a slice is taken)."""
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
        names = (directory / "feature_names.txt").read_text().split("\n")
        return cls(**arrays, feature_names=tuple(names))
