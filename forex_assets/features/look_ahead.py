"""A look-ahead audit of a stored feature matrix: recompute it from a prefix of the data.

A feature known at a row's close must not change when everything after that close is
deleted. So the audit cuts the M1 bars at an instant, recomputes every timeframe's
indicators and the as-of assembly on what is left, and compares each stored row that
closed by the cut with its recomputed twin, value by value. Any difference is
information from after the row's close: a join on a bar still forming, a centred window,
a resample labelled at the wrong edge.

Only values present in both are compared. Warm-up trimming legitimately differs between
the two (the stored matrix trimmed the leading rows of each timeframe and of the matrix),
and leaves a missing value on one side, never a different one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from forex_assets.features.feature_config import FeatureSettings
from forex_assets.features.feature_matrix import (
    assemble_feature_matrix,
    higher_timeframes,
    matrix_feature_columns,
    trend_ema_periods,
    with_confluence,
)
from forex_assets.features.indicator_set import compute_indicators
from forex_assets.market.bar_schema import TIME
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.resample import resample_bars


@dataclass(frozen=True)
class LookAheadReport:
    cut: datetime
    rows_compared: int
    values_compared: int
    mismatches: int
    first_mismatch: dict[str, object] | None

    @property
    def passed(self) -> bool:
        return self.rows_compared > 0 and self.mismatches == 0


def audit_look_ahead(
    m1: pl.DataFrame,
    matrix: pl.DataFrame,
    settings: FeatureSettings,
    calendar: FxCalendar,
    cut_share: float = 0.6,
) -> LookAheadReport:
    """Compare the stored `matrix` with one rebuilt from M1 bars before the cut (the bar
    at `cut_share` of the M1 rows)."""
    if not 0.0 < cut_share < 1.0:
        raise ValueError(f"cut_share={cut_share!r} must be in (0, 1).")
    cut = m1.get_column(TIME)[int(cut_share * (m1.height - 1))]
    prefix = m1.filter(pl.col(TIME) < cut)
    base = settings.base_timeframe
    bars = {tf: resample_bars(prefix, tf, calendar) for tf in [base, *higher_timeframes(base)]}
    features = {
        tf: compute_indicators(frame, settings.indicators, float32=True)
        for tf, frame in bars.items()
    }
    rebuilt = assemble_feature_matrix(features, base)
    emas = trend_ema_periods(settings.indicators)
    if emas is not None:
        rebuilt = with_confluence(rebuilt, bars, base, emas)
    columns = [c for c in matrix_feature_columns(matrix) if c in rebuilt.columns]
    stored = matrix.filter(pl.col("close_time") <= cut).select(TIME, *columns)
    joined = stored.join(
        rebuilt.select(TIME, *(pl.col(c).cast(pl.Float32) for c in columns)),
        on=TIME,
        how="inner",
        suffix="__rebuilt",
    )
    compared = mismatches = 0
    first: dict[str, object] | None = None
    for column in columns:
        kept = joined.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy()
        again = (
            joined.get_column(f"{column}__rebuilt").cast(pl.Float64).fill_null(np.nan).to_numpy()
        )
        both = np.isfinite(kept) & np.isfinite(again)
        differ = both & (kept != again)
        compared += int(both.sum())
        mismatches += int(differ.sum())
        if first is None and differ.any():
            row = int(np.argmax(differ))
            first = {
                "column": column,
                "time": str(joined.get_column(TIME)[row]),
                "stored": float(kept[row]),
                "from_prefix": float(again[row]),
            }
    return LookAheadReport(cut, joined.height, compared, mismatches, first)
