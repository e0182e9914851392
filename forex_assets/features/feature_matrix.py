"""The feature matrix: base-timeframe rows with every higher timeframe joined as-of.

A row describes one completed base bar and holds only what was known when it closed:

* its own timeframe's features, and
* for each higher timeframe, the features of the last higher-timeframe bar that had
  *closed* by then (its `close_time` at or before the base bar's `close_time`). A
  higher-timeframe bar still forming is never joined, so an H4 feature never reveals how
  the current four hours end.

Rows are keyed by the base bar's `time` (open) and carry `close_time`, the instant the
row became known; labels and cross-validation purging refer to it. Columns are prefixed
with their timeframe (`h4__rsi_14`). A null means "no completed bar of that timeframe
yet"; NaN means the indicator itself is undefined there (warm-up, a flat range), as in
the per-timeframe features.

The cross-timeframe confluence feature is the seed's trend agreement: each timeframe
votes +1 or -1 by whether its fast EMA is above its slow EMA (the two shortest EMA
periods configured), and `confluence_trend` is the mean vote, from -1 (every timeframe
down) to +1 (every timeframe up), over the timeframes whose EMAs have warmed up. The votes
are computed from each timeframe's bars (see `with_confluence`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

import forex_assets.features.indicators as indicators
from forex_assets.features.feature_config import FeatureSettings
from forex_assets.features.hygiene import HygieneReport, clean_feature_columns
from forex_assets.features.indicator_set import IndicatorSpec
from forex_assets.features.labels import LABEL_COLUMNS, label_bars
from forex_assets.market.bar_schema import TIME
from forex_assets.market.timeframes import Timeframe

CLOSE_TIME = "close_time"
KNOWN_AT = "_known_at"
CONFLUENCE_TREND = "confluence_trend"
KEY_COLUMNS = (TIME, CLOSE_TIME, "complete")


def matrix_feature_columns(matrix: pl.DataFrame) -> list[str]:
    """The model inputs of a stored feature matrix: everything but keys and labels."""
    return [c for c in matrix.columns if c not in KEY_COLUMNS and c not in LABEL_COLUMNS]


def prefixed(timeframe: Timeframe, column: str) -> str:
    return f"{timeframe.asset_name}__{column}"


def higher_timeframes(base: Timeframe) -> list[Timeframe]:
    return [tf for tf in Timeframe if tf.nominal_minutes > base.nominal_minutes]


def _feature_names(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in KEY_COLUMNS]


def _completed(features: pl.DataFrame, timeframe: Timeframe) -> pl.DataFrame:
    return features.filter(pl.col("complete")).select(
        TIME,
        CLOSE_TIME,
        *(pl.col(c).alias(prefixed(timeframe, c)) for c in _feature_names(features)),
    )


def trend_ema_periods(specs: Sequence[IndicatorSpec]) -> tuple[int, int] | None:
    """The two shortest configured EMA periods (fast, slow), or None with fewer than two."""
    periods = sorted({int(dict(s.params)["period"]) for s in specs if s.name == "ema"})
    return (periods[0], periods[1]) if len(periods) >= 2 else None


def assemble_feature_matrix(
    features: Mapping[Timeframe, pl.DataFrame], base: Timeframe
) -> pl.DataFrame:
    """Join the base timeframe's completed rows with each higher timeframe, as of close.

    `features` maps timeframes to their feature frames (`time`, `close_time`, `complete`
    and feature columns, sorted by time); every timeframe above `base` present in it is
    joined. Values after a row's `close_time` never influence that row.
    """
    if base not in features:
        raise KeyError(
            f"base timeframe {base.value} has no features among "
            f"{sorted(tf.value for tf in features)}; compute it or choose another base."
        )
    matrix = _completed(features[base], base)
    for timeframe in higher_timeframes(base):
        if timeframe not in features:
            continue
        higher = (
            _completed(features[timeframe], timeframe).drop(TIME).rename({CLOSE_TIME: KNOWN_AT})
        )
        matrix = matrix.join_asof(
            higher, left_on=CLOSE_TIME, right_on=KNOWN_AT, strategy="backward"
        ).drop(KNOWN_AT)
    return matrix


def trend_votes(bars: pl.DataFrame, emas: tuple[int, int]) -> pl.DataFrame:
    """+1 / -1 per completed bar by whether its fast EMA of closes is above its slow one
    (null while the slow EMA warms up), keyed by the bar's close time."""
    completed = bars.filter(pl.col("complete"))
    close = completed.get_column("close").cast(pl.Float64).to_numpy()
    fast, slow = (indicators.ema(close, period) for period in emas)
    vote = pl.Series("vote", np.sign(fast - slow)).fill_nan(None)
    return completed.select(pl.col(CLOSE_TIME).alias(KNOWN_AT)).with_columns(vote)


def with_confluence(
    matrix: pl.DataFrame,
    bars: Mapping[Timeframe, pl.DataFrame],
    base: Timeframe,
    emas: tuple[int, int],
) -> pl.DataFrame:
    """`matrix` with `confluence_trend`: the mean trend vote of the base and every higher
    timeframe in `bars`, each as of its last bar closed by the row's close.

    The votes come from the bars, not from the feature columns: which feature columns
    survive hygiene depends on how much data there is, and a vote that appeared or
    vanished with the length of the sample would make a past row depend on later data.
    """
    names = []
    for timeframe in [base, *higher_timeframes(base)]:
        if timeframe not in bars:
            continue
        name = f"_vote_{timeframe.value}"
        votes = trend_votes(bars[timeframe], emas).rename({"vote": name})
        matrix = matrix.join_asof(
            votes, left_on=CLOSE_TIME, right_on=KNOWN_AT, strategy="backward"
        ).drop(KNOWN_AT)
        names.append(name)
    confluence = pl.mean_horizontal(names).cast(pl.Float32).alias(CONFLUENCE_TREND)
    return matrix.with_columns(confluence).drop(names)


class TooFewBarsError(ValueError):
    """The bars leave no labeled row: every later step (folds, models, the look-ahead
    audit) would otherwise fail on an empty matrix with an error that names no cause."""


@dataclass(frozen=True)
class FeatureMatrix:
    frame: pl.DataFrame
    feature_columns: tuple[str, ...]
    label_columns: tuple[str, ...]
    hygiene: HygieneReport
    unlabeled_rows: int


def build_feature_matrix(
    features: Mapping[Timeframe, pl.DataFrame],
    bars: Mapping[Timeframe, pl.DataFrame],
    settings: FeatureSettings,
) -> FeatureMatrix:
    """Assemble, clean and label the matrix for one symbol.

    Labels are computed on every completed base bar (so their ATR has its full history),
    then attached to the rows that survive hygiene; rows whose triple-barrier path runs
    past the end of the data have no label yet and are left out, counted in
    `unlabeled_rows`.
    """
    base = settings.base_timeframe
    assembled = assemble_feature_matrix(features, base)
    emas = trend_ema_periods(settings.indicators)
    if emas is not None:
        assembled = with_confluence(assembled, bars, base, emas)
    columns = [c for c in assembled.columns if c not in KEY_COLUMNS]
    cleaned, report = clean_feature_columns(assembled, columns, settings.max_warmup_share)
    labels = label_bars(bars[base].filter(pl.col("complete")), settings.labels)
    resolved = labels.filter(pl.col("tb_label").is_not_null())
    frame = cleaned.join(resolved, on=TIME, how="inner", maintain_order="left")
    if frame.height == 0:
        raise TooFewBarsError(_too_few_bars(report, cleaned.height, base, settings))
    kept = tuple(c for c in cleaned.columns if c in columns)
    return FeatureMatrix(
        frame=frame.with_columns(pl.col(kept).cast(pl.Float32)),
        feature_columns=kept,
        label_columns=tuple(c for c in labels.columns if c != TIME),
        hygiene=report,
        unlabeled_rows=cleaned.height - frame.height,
    )


def _too_few_bars(
    report: HygieneReport, unlabeled: int, base: Timeframe, settings: FeatureSettings
) -> str:
    """Why no row is left, with each share of the bars accounted for."""
    warmup = f"{report.warmup_rows} ({report.warmup_column})" if report.warmup_column else "none"
    return (
        f"{report.rows_in} complete {base.value} bars is too few for the feature matrix: "
        f"indicator warm-up takes {warmup} and the other {unlabeled} have no triple-barrier label yet (a label needs "
        f"up to labels.max_horizon_bars={settings.labels.max_horizon_bars} later bars), so "
        "no row is left to train on; use more data, e.g. FOREX_ASSETS_SAMPLE_YEARS=0.1 for "
        "a sample symbol."
    )
