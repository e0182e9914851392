"""The default indicator set computed by calling TA-Lib directly: the parity reference.

Written independently of `forex_assets.features.indicators` and `indicator_set` (nothing
from them is imported) so a wrong parameter, a swapped output or a broken shared piece in
the feature engine shows up as a difference. Indicators TA-Lib has come straight from
TA-Lib; the rest follow their definitions, from TA-Lib primitives (Donchian, Keltner,
z-score) or from numpy / pandas (log returns, realized volatility with a pandas rolling
mean rather than TA-Lib's SMA, the EWMA recursion as a plain loop, candle shares, and
session flags from pandas' time-zone conversion).

It doubles as the benchmark anchor "TA-Lib called directly": the parameters are written
out here, as a user calling TA-Lib would write them, and `REFERENCE_COLUMNS` lists the
columns in the order `compute_indicators(bars, default_indicators())` produces them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import talib
from numba import njit

# Session windows in local wall-clock hours: [open, close).
SESSION_HOURS = (
    ("asia", "Asia/Tokyo", 9, 18),
    ("london", "Europe/London", 8, 17),
    ("new_york", "America/New_York", 8, 17),
)


def _column(bars: pl.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(bars.get_column(name).cast(pl.Float64).to_numpy())


@njit(cache=False)
def _ewma_variance(returns: np.ndarray, span: int, seed: float) -> np.ndarray:
    """Variance seeded at index `span`, then v[i] = (1 - a) v[i-1] + a r[i]^2."""
    out = np.full(returns.size, np.nan)
    if returns.size <= span:
        return out
    alpha = 2.0 / (span + 1.0)
    out[span] = seed
    for i in range(span + 1, returns.size):
        out[i] = (1.0 - alpha) * out[i - 1] + alpha * returns[i] * returns[i]
    return out


def ewma_vol(returns: np.ndarray, span: int) -> np.ndarray:
    seed = float(np.mean(np.square(returns[1 : span + 1]))) if returns.size > span else 0.0
    return np.sqrt(_ewma_variance(returns, span, seed))


def realized_vol(returns: np.ndarray, period: int) -> np.ndarray:
    squared = pd.Series(np.square(returns))
    return np.sqrt(squared.rolling(period, min_periods=period).mean().to_numpy())


def log_return(close: np.ndarray, k: int) -> np.ndarray:
    shifted = pd.Series(close).shift(k).to_numpy()
    return np.log(close / shifted)


def zscore(close: np.ndarray, period: int) -> np.ndarray:
    mean = talib.SMA(close, timeperiod=period)
    std = talib.STDDEV(close, timeperiod=period, nbdev=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (close - mean) / std
    z[std == 0] = np.nan
    return z


def session_flags(time_utc: pl.Series) -> dict[str, np.ndarray]:
    utc = pd.DatetimeIndex(time_utc.to_pandas())
    if utc.tz is None:
        utc = utc.tz_localize("UTC")
    flags = {}
    for name, zone, opens, closes in SESSION_HOURS:
        local = utc.tz_convert(zone)
        minute = np.asarray(local.hour * 60 + local.minute)
        inside = (minute >= opens * 60) & (minute < closes * 60)
        flags[f"session_{name}"] = inside.astype(np.float64)
    return flags


def talib_indicators(bars: pl.DataFrame) -> dict[str, np.ndarray]:
    """The default set's columns of indicators TA-Lib has, each from its TA-Lib function."""
    h = _column(bars, "high")
    lo = _column(bars, "low")
    c = _column(bars, "close")
    out: dict[str, np.ndarray] = {}

    for n in (20, 50, 100, 200):
        out[f"sma_{n}"] = talib.SMA(c, timeperiod=n)
    for n in (9, 21, 50, 200):
        out[f"ema_{n}"] = talib.EMA(c, timeperiod=n)
    for n in (20, 50):
        out[f"wma_{n}"] = talib.WMA(c, timeperiod=n)
    for n in (9, 14, 21):
        out[f"rsi_{n}"] = talib.RSI(c, timeperiod=n)
    for fast, slow, signal in ((12, 26, 9), (5, 35, 5)):
        line, sig, hist = talib.MACD(c, fastperiod=fast, slowperiod=slow, signalperiod=signal)
        prefix = f"macd_{fast}_{slow}_{signal}"
        out[f"{prefix}_line"], out[f"{prefix}_signal"], out[f"{prefix}_hist"] = line, sig, hist
    for n, nbdev, label in ((20, 2.0, "2"), (20, 2.5, "2p5"), (50, 2.0, "2")):
        upper, middle, lower = talib.BBANDS(c, timeperiod=n, nbdevup=nbdev, nbdevdn=nbdev, matype=0)
        prefix = f"bbands_{n}_{label}"
        out[f"{prefix}_upper"] = upper
        out[f"{prefix}_middle"] = middle
        out[f"{prefix}_lower"] = lower
        out[f"{prefix}_width"] = (upper - lower) / middle
    for n in (14, 30):
        out[f"atr_{n}"] = talib.ATR(h, lo, c, timeperiod=n)
    out["natr_14"] = talib.NATR(h, lo, c, timeperiod=14)
    out["adx_14_adx"] = talib.ADX(h, lo, c, timeperiod=14)
    out["adx_14_plus_di"] = talib.PLUS_DI(h, lo, c, timeperiod=14)
    out["adx_14_minus_di"] = talib.MINUS_DI(h, lo, c, timeperiod=14)
    for n in (14, 20):
        out[f"cci_{n}"] = talib.CCI(h, lo, c, timeperiod=n)
    out["stoch_14_3_3_k"], out["stoch_14_3_3_d"] = talib.STOCH(
        h, lo, c, fastk_period=14, slowk_period=3, slowk_matype=0, slowd_period=3, slowd_matype=0
    )
    out["willr_14"] = talib.WILLR(h, lo, c, timeperiod=14)
    out["mom_10"] = talib.MOM(c, timeperiod=10)
    out["roc_10"] = talib.ROC(c, timeperiod=10)
    out["cmo_14"] = talib.CMO(c, timeperiod=14)
    return out


def talib_reference(bars: pl.DataFrame) -> dict[str, np.ndarray]:
    """Every column of the default indicator set on `bars` (sorted by time), as float64."""
    o = _column(bars, "open")
    h = _column(bars, "high")
    lo = _column(bars, "low")
    c = _column(bars, "close")
    out = talib_indicators(bars)
    for n in (20, 55):
        upper, lower = talib.MAX(h, timeperiod=n), talib.MIN(lo, timeperiod=n)
        out[f"donchian_{n}_upper"] = upper
        out[f"donchian_{n}_lower"] = lower
        out[f"donchian_{n}_middle"] = (upper + lower) / 2.0
    middle = talib.EMA(c, timeperiod=20)
    offset = 2.0 * talib.ATR(h, lo, c, timeperiod=10)
    out["keltner_20_10_2_upper"] = middle + offset
    out["keltner_20_10_2_lower"] = middle - offset

    for k in (1, 5, 20):
        out[f"log_return_{k}"] = log_return(c, k)
    returns = log_return(c, 1)
    for n in (20, 60):
        out[f"realized_vol_{n}"] = realized_vol(returns, n)
    for span in (20, 60):
        out[f"ewma_vol_{span}"] = ewma_vol(returns, span)
    for n in (20, 50):
        out[f"zscore_{n}"] = zscore(c, n)

    bar_range = h - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        top, bottom = np.maximum(o, c), np.minimum(o, c)
        shares = {
            "candle_upper_wick": (h - top) / bar_range,
            "candle_lower_wick": (bottom - lo) / bar_range,
            "candle_body": (top - bottom) / bar_range,
        }
    for name, share in shares.items():
        share[bar_range == 0] = np.nan
        out[name] = share

    out.update(session_flags(bars.get_column("time")))
    return out


REFERENCE_COLUMNS = (
    *(f"sma_{n}" for n in (20, 50, 100, 200)),
    *(f"ema_{n}" for n in (9, 21, 50, 200)),
    "wma_20",
    "wma_50",
    *(f"rsi_{n}" for n in (9, 14, 21)),
    *(f"macd_{p}_{s}" for p in ("12_26_9", "5_35_5") for s in ("line", "signal", "hist")),
    *(
        f"bbands_{p}_{s}"
        for p in ("20_2", "20_2p5", "50_2")
        for s in ("upper", "middle", "lower", "width")
    ),
    "atr_14",
    "atr_30",
    "natr_14",
    "adx_14_adx",
    "adx_14_plus_di",
    "adx_14_minus_di",
    "cci_14",
    "cci_20",
    "stoch_14_3_3_k",
    "stoch_14_3_3_d",
    "willr_14",
    "mom_10",
    "roc_10",
    "cmo_14",
    *(f"donchian_{n}_{s}" for n in (20, 55) for s in ("upper", "lower", "middle")),
    "keltner_20_10_2_upper",
    "keltner_20_10_2_lower",
    *(f"log_return_{k}" for k in (1, 5, 20)),
    "realized_vol_20",
    "realized_vol_60",
    "ewma_vol_20",
    "ewma_vol_60",
    "zscore_20",
    "zscore_50",
    "candle_upper_wick",
    "candle_lower_wick",
    "candle_body",
    "session_asia",
    "session_london",
    "session_new_york",
)
