"""Benchmark anchor for the feature engine: the default indicator set written with `ta`.

`ta` (bukosabino/ta, 0.11) is the pure-pandas technical-analysis package; this module is
what a user of it would write to get the project's indicator columns from a pandas frame
of bars: one `ta` class per indicator where `ta` has it, and plain pandas (`rolling`,
`ewm`, `shift`, `diff`, `tz_convert`) where it does not (MOM, CMO, multi-bar log returns,
realized and EWMA volatility, z-scores, candle shares, session flags). It is a speed
anchor that computes the same quantities, not a second reference implementation.

Values agree with ours (TA-Lib) once the warm-up has been forgotten, which `ta_matches`
measures as the median relative difference over the last half of the rows. Measured on
the sample EURUSD M1 bars (50,400 and 1,015,200 rows), every column agrees to below 1e-7:

- Most columns agree to 1e-12 or better (exactly, for rolling max/min, shifts, candle
  shares and session flags); MACD to a few 1e-12.
- ``bbands_*_width`` and ``zscore_*`` are the loosest: about 5e-9 on 50k bars, 6.5e-8 on
  1M. pandas' rolling standard deviation is an online update over the whole series, so
  its rounding error grows with length, and a band width or z-score divides that error by
  a small number (the deviation of prices on a 1e-5 quote grid). Where the deviation is
  (nearly) zero the two libraries can disagree outright (one row in 1,000 for
  ``zscore_20``); CCI likewise on one row in 10,000 where its mean deviation vanishes.
- Warm-up conventions differ but do not reach the compared half: `ta` seeds EMAs (and so
  MACD) with the first value (``ewm(adjust=False)``) where TA-Lib seeds with an SMA, seeds
  RSI's Wilder averages from the first difference, starts RSI/ATR one bar earlier and
  +DI/-DI one bar later than TA-Lib, and fills the warm-up of ATR, ADX, +DI and -DI with
  0.0 instead of NaN. EWMA volatility here is ``ewm(span, adjust=False)`` of squared
  returns, seeded with the first squared return instead of the mean of the first `span`;
  the difference decays as (1 - alpha)^n.

`ta` computes ATR, ADX, WMA and CCI with Python-level loops (ATR, ADX) or
``rolling().apply`` with a Python function (WMA, CCI), which is why the anchor is slow on
a million bars; that is the cost a `ta` user pays, so the anchor keeps it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ta.momentum import ROCIndicator, RSIIndicator, StochasticOscillator, WilliamsRIndicator
from ta.others import DailyLogReturnIndicator
from ta.trend import (
    MACD,
    ADXIndicator,
    CCIIndicator,
    EMAIndicator,
    SMAIndicator,
    WMAIndicator,
)
from ta.volatility import AverageTrueRange, BollingerBands, DonchianChannel, KeltnerChannel

from forex_assets.features.feature_config import default_indicators
from forex_assets.features.indicator_set import IndicatorSpec

# Sessions in local wall-clock time, in the order of the project's `session_*` columns.
SESSION_HOURS = (
    ("asia", "Asia/Tokyo", 9, 18),
    ("london", "Europe/London", 8, 17),
    ("new_york", "America/New_York", 8, 17),
)


@dataclass
class _Bars:
    """Price series on a RangeIndex (ta mixes positional and label indexing) plus times."""

    open: pd.Series
    high: pd.Series
    low: pd.Series
    close: pd.Series
    time: pd.DatetimeIndex
    _cache: dict[tuple, pd.Series] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, bars: pd.DataFrame) -> _Bars:
        if "time" in bars.columns:
            times = pd.DatetimeIndex(bars["time"])
        elif isinstance(bars.index, pd.DatetimeIndex):
            times = bars.index
        else:
            raise ValueError("bars need a DatetimeIndex or a 'time' column")
        times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")

        def price(name: str) -> pd.Series:
            return pd.Series(bars[name].to_numpy(dtype=np.float64), name=name)

        return cls(price("open"), price("high"), price("low"), price("close"), times)

    def shared(self, key: tuple, compute: Callable[[], pd.Series]) -> pd.Series:
        """A piece several indicators use (ATR(14), one-bar log returns), computed once."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def atr(self, period: int) -> pd.Series:
        return self.shared(
            ("atr", period),
            lambda: AverageTrueRange(
                self.high, self.low, self.close, window=period
            ).average_true_range(),
        )

    def log_returns(self) -> pd.Series:
        return self.shared(
            ("log_return",), lambda: DailyLogReturnIndicator(self.close).daily_log_return() / 100.0
        )


Outputs = tuple[pd.Series, ...]


def _bollinger(b: _Bars, period: int, nbdev: float) -> Outputs:
    bands = BollingerBands(b.close, window=period, window_dev=nbdev)
    upper, middle, lower = (
        bands.bollinger_hband(),
        bands.bollinger_mavg(),
        bands.bollinger_lband(),
    )
    return upper, middle, lower, (upper - lower) / middle


def _adx(b: _Bars, period: int) -> Outputs:
    adx = ADXIndicator(b.high, b.low, b.close, window=period)
    return adx.adx(), adx.adx_pos(), adx.adx_neg()


def _stoch(b: _Bars, k_period: int, k_smooth: int, d_period: int) -> Outputs:
    # ta's stoch() is the fast %K and stoch_signal() its SMA(smooth_window): the slow %K.
    fast = StochasticOscillator(b.high, b.low, b.close, window=k_period, smooth_window=k_smooth)
    slow_k = fast.stoch_signal()
    return slow_k, slow_k.rolling(d_period).mean()


def _cmo(b: _Bars, period: int) -> Outputs:
    # TA-Lib's CMO (the project's) smooths gains and losses with Wilder's average like
    # RSI, not Chande's plain sums, so the pandas version does the same.
    change = b.close.diff()
    gain = change.clip(lower=0.0).ewm(alpha=1.0 / period, adjust=False, min_periods=period)
    loss = (-change).clip(lower=0.0).ewm(alpha=1.0 / period, adjust=False, min_periods=period)
    up, down = gain.mean(), loss.mean()
    return (100.0 * (up - down) / (up + down),)


def _donchian(b: _Bars, period: int) -> Outputs:
    channel = DonchianChannel(b.high, b.low, b.close, window=period, offset=0)
    upper, lower = channel.donchian_channel_hband(), channel.donchian_channel_lband()
    return upper, lower, (upper + lower) / 2.0


def _keltner(b: _Bars, period: int, atr_period: int, multiplier: float) -> Outputs:
    channel = KeltnerChannel(
        b.high,
        b.low,
        b.close,
        window=period,
        window_atr=atr_period,
        original_version=False,
        multiplier=multiplier,
    )
    return channel.keltner_channel_hband(), channel.keltner_channel_lband()


def _log_return(b: _Bars, period: int) -> Outputs:
    if period == 1:
        return (b.log_returns(),)
    return (np.log(b.close / b.close.shift(period)),)


def _zscore(b: _Bars, period: int) -> Outputs:
    window = b.close.rolling(period)
    deviation = window.std(ddof=0)
    return (((b.close - window.mean()) / deviation).where(deviation > 0.0),)


def _candle(b: _Bars) -> Outputs:
    span = (b.high - b.low).where(lambda s: s > 0.0)
    top = np.maximum(b.open, b.close)
    bottom = np.minimum(b.open, b.close)
    return (b.high - top) / span, (bottom - b.low) / span, (top - bottom) / span


def _sessions(b: _Bars) -> Outputs:
    flags = []
    for _name, zone, opens, closes in SESSION_HOURS:
        local = b.time.tz_convert(zone)
        minute = local.hour * 60 + local.minute
        inside = (minute >= opens * 60) & (minute < closes * 60)
        flags.append(pd.Series(inside.astype(np.float64)))
    return tuple(flags)


# Indicator name -> outputs in the order of the project's `Indicator.outputs`, called with
# the spec's parameters as keywords.
TA_INDICATORS: dict[str, Callable[..., Outputs]] = {
    "sma": lambda b, period: (SMAIndicator(b.close, window=period).sma_indicator(),),
    "ema": lambda b, period: (EMAIndicator(b.close, window=period).ema_indicator(),),
    "wma": lambda b, period: (WMAIndicator(b.close, window=period).wma(),),
    "rsi": lambda b, period: (RSIIndicator(b.close, window=period).rsi(),),
    "macd": lambda b, fast, slow, signal: (
        (m := MACD(b.close, window_slow=slow, window_fast=fast, window_sign=signal)).macd(),
        m.macd_signal(),
        m.macd_diff(),
    ),
    "bbands": _bollinger,
    "atr": lambda b, period: (b.atr(period),),
    "natr": lambda b, period: (100.0 * b.atr(period) / b.close,),
    "adx": _adx,
    "cci": lambda b, period: (CCIIndicator(b.high, b.low, b.close, window=period).cci(),),
    "stoch": _stoch,
    "willr": lambda b, period: (
        WilliamsRIndicator(b.high, b.low, b.close, lbp=period).williams_r(),
    ),
    "mom": lambda b, period: (b.close.diff(period),),
    "roc": lambda b, period: (ROCIndicator(b.close, window=period).roc(),),
    "cmo": _cmo,
    "donchian": _donchian,
    "keltner": _keltner,
    "log_return": _log_return,
    "realized_vol": lambda b, period: (np.sqrt((b.log_returns() ** 2).rolling(period).mean()),),
    "ewma_vol": lambda b, span: (
        np.sqrt((b.log_returns() ** 2).ewm(span=span, adjust=False, min_periods=span).mean()),
    ),
    "zscore": _zscore,
    "candle": _candle,
    "session": _sessions,
}


def ta_indicator_set(
    bars: pd.DataFrame,
    specs: Sequence[IndicatorSpec] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """The indicator columns of `specs` (default: the project's default set) via `ta`.

    `bars` has float columns open, high, low, close and a UTC DatetimeIndex or a `time`
    column. Keys are the project's column names. If `timings` is given, it receives the
    wall seconds spent per indicator name (`rsi`, `bbands`, ...); a piece shared between
    indicators (ATR(14) for `natr`, one-bar log returns for the volatilities) is charged to
    the first indicator that needs it, as it would be in a script computing the whole set.
    """
    specs = default_indicators() if specs is None else specs
    out: dict[str, np.ndarray] = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        prices = _Bars.from_frame(bars)
        for spec in specs:
            started = time.perf_counter()
            values = TA_INDICATORS[spec.name](prices, **dict(spec.params))
            for column, value in zip(spec.columns, values, strict=True):
                out[column] = np.asarray(value, dtype=np.float64)
            if timings is not None:
                timings[spec.name] = timings.get(spec.name, 0.0) + time.perf_counter() - started
    return out


def ta_matches(ours: Mapping[str, object], theirs: Mapping[str, object]) -> dict[str, float]:
    """Per column of `theirs`, the median relative difference to `ours` over the last half.

    Relative difference is |a - b| / max(|a|, |b|) (0 where both are 0); rows where both
    are NaN are skipped, rows where exactly one is NaN count as 1.0. A column missing from
    `ours` or with no comparable row maps to NaN. `ours` may be a dict of arrays or a
    polars/pandas frame.
    """
    result: dict[str, float] = {}
    for column, their_values in theirs.items():
        if column not in ours:
            result[column] = float("nan")
            continue
        a = np.asarray(ours[column], dtype=np.float64)
        b = np.asarray(their_values, dtype=np.float64)
        a, b = a[a.size // 2 :], b[b.size // 2 :]
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.maximum(np.abs(a), np.abs(b))
            rel = np.where(scale > 0.0, np.abs(a - b) / scale, 0.0)
        rel = np.where(np.isnan(a) != np.isnan(b), 1.0, rel)
        rel = rel[~(np.isnan(a) & np.isnan(b))]
        result[column] = float(np.median(rel)) if rel.size else float("nan")
    return result
