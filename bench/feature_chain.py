"""The feature chain of one symbol's run, in one process, for the feature benchmark.

Runs what the `bars/<tf>`, `features/<tf>` and `feature_matrix` steps do, in order, and
keeps only what the next step would read, so the process's peak memory is an upper
bound for any single step. Imports nothing the steps do not, so the baseline memory is
what a step process carries too.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from forex_assets.features.feature_config import FeatureSettings
from forex_assets.features.feature_matrix import KEY_COLUMNS, FeatureMatrix, build_feature_matrix
from forex_assets.features.hygiene import clean_feature_columns
from forex_assets.features.indicator_set import compute_indicators
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.resample import resample_bars
from forex_assets.market.timeframes import Timeframe


def _timeframe_features(bars: pl.DataFrame, settings: FeatureSettings) -> pl.DataFrame:
    computed = compute_indicators(bars, settings.indicators, float32=True)
    names = [c for c in computed.columns if c not in KEY_COLUMNS]
    return clean_feature_columns(computed, names, settings.max_warmup_share)[0]


def feature_matrix_from_m1(m1: pl.DataFrame, settings: FeatureSettings) -> FeatureMatrix:
    """M1 bars -> 11 timeframes -> features -> the labeled feature matrix."""
    calendar = FxCalendar()
    features: dict[Timeframe, pl.DataFrame] = {}
    used_bars: dict[Timeframe, pl.DataFrame] = {}
    for timeframe in Timeframe:
        bars = resample_bars(m1, timeframe, calendar)
        computed = _timeframe_features(bars, settings)
        if timeframe.nominal_minutes >= settings.base_timeframe.nominal_minutes:
            features[timeframe] = computed
            used_bars[timeframe] = bars
    return build_feature_matrix(features, used_bars, settings)


def build_matrix_from_parquet(m1_path: str) -> dict[str, float]:
    """Time and peak memory of M1 Parquet -> 11 timeframes -> features -> feature matrix."""
    started = time.perf_counter()
    m1 = pl.read_parquet(m1_path)
    matrix = feature_matrix_from_m1(m1, FeatureSettings())
    return {
        "seconds": time.perf_counter() - started,
        "m1_rows": m1.height,
        "rows": matrix.frame.height,
        "feature_columns": len(matrix.feature_columns),
        "peak_rss_bytes": peak_resident_bytes(),
    }


def peak_resident_bytes() -> int:
    """This process's resident-memory high-water mark (VmHWM).

    Not `getrusage`: Linux carries the parent's peak across fork and exec into the child's
    ru_maxrss, so a benchmark started from a big process would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError("/proc/self/status has no VmHWM line; peak memory needs Linux")
