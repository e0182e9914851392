"""Column hygiene: which feature columns carry information, and where warm-up ends.

A column with no value, or one value everywhere, teaches a model nothing and costs every
downstream step time, so it is dropped, with the reason kept for the metadata. Warm-up is
trimmed explicitly: rows before the last kept column's first value are cut. A column
whose warm-up alone would cut more than `max_warmup_share` of the rows (SMA 200 on the
two years of weekly bars, 104 rows) is dropped instead: one slow feature must
not cost every other feature most of its history.

These are decisions about a whole sample, like choosing which columns to keep, never
changes to values: the values that survive are exactly the ones computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

DEFAULT_MAX_WARMUP_SHARE = 0.1


@dataclass(frozen=True)
class DroppedColumn:
    column: str
    reason: str
    detail: str


@dataclass(frozen=True)
class HygieneReport:
    rows_in: int
    warmup_rows: int
    warmup_column: str | None
    dropped: tuple[DroppedColumn, ...]

    @property
    def rows_out(self) -> int:
        return self.rows_in - self.warmup_rows

    def dropped_table(self) -> str:
        """Markdown table of dropped columns, for materialization metadata."""
        if not self.dropped:
            return "no column dropped"
        lines = ["| column | reason | detail |", "|---|---|---|"]
        lines += [f"| {d.column} | {d.reason} | {d.detail} |" for d in self.dropped]
        return "\n".join(lines)


def clean_feature_columns(
    frame: pl.DataFrame,
    columns: Sequence[str],
    max_warmup_share: float = DEFAULT_MAX_WARMUP_SHARE,
) -> tuple[pl.DataFrame, HygieneReport]:
    """Drop uninformative `columns` of `frame` and trim leading warm-up rows."""
    if not 0.0 <= max_warmup_share < 1.0:
        raise ValueError(
            f"max_warmup_share={max_warmup_share!r} must be in [0, 1): it is the largest "
            "share of rows a single column's warm-up may cost."
        )
    rows = frame.height
    allowed_warmup = int(max_warmup_share * rows)
    dropped: list[DroppedColumn] = []
    first_valid: dict[str, int] = {}
    for column in columns:
        values = frame.get_column(column).fill_null(np.nan).to_numpy()
        present = ~np.isnan(values)
        if not present.any():
            dropped.append(DroppedColumn(column, "all_missing", f"no value in {rows} rows"))
            continue
        first = int(present.argmax())
        if first > allowed_warmup:
            dropped.append(
                DroppedColumn(
                    column,
                    "warmup_too_long",
                    f"first value at row {first} of {rows}; at most {allowed_warmup} "
                    f"({max_warmup_share:.0%}) allowed",
                )
            )
            continue
        first_valid[column] = first
    warmup = max(first_valid.values(), default=0)
    warmup_column = max(first_valid, key=first_valid.__getitem__) if first_valid else None
    kept: list[str] = []
    for column in first_valid:
        values = frame.get_column(column).slice(warmup).fill_null(np.nan).to_numpy()
        present = values[~np.isnan(values)]
        if present.size == 0:
            dropped.append(
                DroppedColumn(column, "all_missing", f"no value after the {warmup} warm-up rows")
            )
        elif present.min() == present.max():
            dropped.append(
                DroppedColumn(column, "constant", f"{present[0]:g} on every row with a value")
            )
        else:
            kept.append(column)
    keep = [c for c in frame.columns if c not in columns or c in kept]
    report = HygieneReport(rows, warmup, warmup_column if warmup else None, tuple(dropped))
    return frame.select(keep).slice(warmup), report


def missing_share(frame: pl.DataFrame, columns: Sequence[str]) -> float:
    """Share of NaN or null cells among `columns`."""
    if not columns or frame.height == 0:
        return 0.0
    counts = frame.select(
        pl.sum_horizontal(
            [(pl.col(c).is_null() | pl.col(c).is_nan()).sum() for c in columns]
        ).alias("missing")
    ).item()
    return counts / (frame.height * len(columns))
