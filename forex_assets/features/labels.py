"""Labels for supervised learning on bars: ATR-scaled triple barrier and meta-labels.

Both are decided by which barrier a price path touches first after the label's entry,
the close of bar i. The path is the following bars' highs and lows, which is all a bar
series knows about the order of prices:

* **Triple barrier.** Upper barrier at close + take_profit x ATR, lower at
  close - stop_loss x ATR (ATR of bar i, so barriers widen with volatility), vertical
  barrier after a volatility-scaled horizon: ``horizon_bars x reference ATR / ATR``,
  rounded and clipped to [min_horizon_bars, max_horizon_bars], with the reference ATR the
  mean ATR over the last `volatility_lookback` bars (bar i included). Calm markets get more bars to
  reach barriers of the same ATR multiple, busy ones fewer. Label +1 when the upper
  barrier is touched first, -1 for the lower.
  *Both-hit rule*: when one bar touches both barriers its path inside the bar is unknown;
  ``both_hit="stop"`` (default) counts it as the stop (-1), the same pessimistic order the
  backtest kernel uses; ``both_hit="zero"`` labels it 0.
  *Neither-hit rule*: if the vertical barrier comes first, ``neither_hit="zero"``
  (default) labels 0; ``neither_hit="sign"`` labels the sign of the return at the
  vertical barrier.
* **Meta-label.** For each event of a base signal (a fast/slow EMA cross; the side is the
  cross direction), 1 when take-profit is reached before stop-loss within `max_hold`
  bars, else 0 (stop first, both in one bar, or neither in time). Rows without an event
  have no meta-label.

Every label stores `t1`, the close time of the bar that decided it, so cross-validation
can purge training rows whose label interval overlaps a test period. A label whose path
runs past the end of the data is unresolved: its label and t1 are null, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import polars as pl
from numba import njit

import forex_assets.features.indicators as indicators
from forex_assets.market.bar_schema import TIME


class Touch(IntEnum):
    """How a barrier scan ended."""

    UNRESOLVED = -2
    LOWER = -1
    VERTICAL = 0
    UPPER = 1
    BOTH = 2


LABEL_COLUMNS = (
    "tb_label",
    "tb_t1",
    "tb_return",
    "tb_horizon",
    "meta_label",
    "meta_t1",
    "meta_side",
)
BOTH_HIT_RULES = ("stop", "zero")
NEITHER_HIT_RULES = ("zero", "sign")


class LabelConfigError(ValueError):
    """Label settings that cannot produce labels; the message names the setting."""


@dataclass(frozen=True)
class LabelSettings:
    take_profit_atr: float = 2.0
    stop_loss_atr: float = 1.0
    atr_period: int = 14
    horizon_bars: int = 48
    min_horizon_bars: int = 12
    max_horizon_bars: int = 192
    volatility_lookback: int = 1000
    both_hit: str = "stop"
    neither_hit: str = "zero"
    signal_fast: int = 9
    signal_slow: int = 21
    max_hold_bars: int = 96

    def __post_init__(self) -> None:
        for name in ("take_profit_atr", "stop_loss_atr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise LabelConfigError(
                    f"{name}={value!r} must be a positive number: a barrier at zero ATR "
                    "is touched by every bar."
                )
        for name in ("atr_period", "horizon_bars", "min_horizon_bars", "max_horizon_bars",
                     "volatility_lookback", "signal_fast", "signal_slow", "max_hold_bars"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LabelConfigError(f"{name}={value!r} must be a whole number of bars >= 1.")
        if not self.min_horizon_bars <= self.horizon_bars <= self.max_horizon_bars:
            raise LabelConfigError(
                f"horizon bounds min_horizon_bars={self.min_horizon_bars}, horizon_bars="
                f"{self.horizon_bars}, max_horizon_bars={self.max_horizon_bars} are out of "
                "order; use min <= horizon <= max."
            )
        if self.signal_fast >= self.signal_slow:
            raise LabelConfigError(
                f"signal_fast={self.signal_fast} must be shorter than signal_slow="
                f"{self.signal_slow} for an EMA cross."
            )
        if self.both_hit not in BOTH_HIT_RULES:
            raise LabelConfigError(f"both_hit={self.both_hit!r} is not one of {BOTH_HIT_RULES}.")
        if self.neither_hit not in NEITHER_HIT_RULES:
            raise LabelConfigError(
                f"neither_hit={self.neither_hit!r} is not one of {NEITHER_HIT_RULES}."
            )


@njit(cache=True, nogil=True)
def first_touch(
    high: np.ndarray,
    low: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    horizon: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each entry i, the bar that ends its path and how (a `Touch` value).

    Bars i+1 .. i+horizon[i] are scanned; an entry with a NaN barrier or a horizon below
    1 stays UNRESOLVED, as does one whose path runs past the last bar untouched.
    """
    n = high.size
    exit_index = np.full(n, -1, dtype=np.int64)
    touch = np.full(n, -2, dtype=np.int8)
    for i in range(n):
        up = upper[i]
        down = lower[i]
        h = horizon[i]
        if not (up == up and down == down) or h < 1:
            continue
        last = i + h
        end = min(last, n - 1)
        for j in range(i + 1, end + 1):
            hit_up = high[j] >= up
            hit_down = low[j] <= down
            if hit_up and hit_down:
                exit_index[i] = j
                touch[i] = 2
                break
            if hit_up:
                exit_index[i] = j
                touch[i] = 1
                break
            if hit_down:
                exit_index[i] = j
                touch[i] = -1
                break
        else:
            if last <= n - 1:
                exit_index[i] = last
                touch[i] = 0
    return exit_index, touch


@dataclass(frozen=True)
class _Bars:
    time: pl.Series
    close_time_us: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def of(cls, bars: pl.DataFrame) -> _Bars:
        def column(name: str) -> np.ndarray:
            return np.ascontiguousarray(bars.get_column(name).cast(pl.Float64).to_numpy())

        return cls(
            time=bars.get_column(TIME),
            close_time_us=bars.get_column("close_time").dt.epoch("us").to_numpy(),
            high=column("high"),
            low=column("low"),
            close=column("close"),
        )

    def t1(self, exit_index: np.ndarray, resolved: np.ndarray) -> pl.Series:
        times = np.where(resolved, self.close_time_us[np.maximum(exit_index, 0)], 0)
        return pl.Series(times).cast(pl.Datetime("us", "UTC")).set(pl.Series(~resolved), None)


def volatility_scaled_horizon(atr: np.ndarray, settings: LabelSettings) -> np.ndarray:
    """Bars to the vertical barrier: longer when ATR is below its recent mean."""
    reference = indicators.sma(atr, settings.volatility_lookback)
    # Until the lookback has filled, the ATR seen so far is the best reference there is.
    seen = np.cumsum(np.nan_to_num(atr)) / np.maximum(np.cumsum(~np.isnan(atr)), 1)
    reference = np.where(np.isnan(reference), seen, reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.rint(settings.horizon_bars * reference / atr)
    scaled = np.clip(np.nan_to_num(scaled, nan=0.0), settings.min_horizon_bars,
                     settings.max_horizon_bars)  # fmt: skip
    return np.where(np.isnan(atr), 0, scaled).astype(np.int64)


def _label_frame(
    prefix: str, times: pl.Series, label: pl.Series, t1: pl.Series, **extra: pl.Series
) -> pl.DataFrame:
    return pl.DataFrame({TIME: times, f"{prefix}_label": label, f"{prefix}_t1": t1, **extra})


def triple_barrier_labels(bars: pl.DataFrame, settings: LabelSettings) -> pl.DataFrame:
    """`tb_label` (-1/0/+1), `tb_t1`, `tb_return` (entry to exit) and `tb_horizon` per bar.

    `bars` are complete bars of one timeframe with `close_time`, sorted by time.
    """
    b = _Bars.of(bars)
    atr = indicators.atr(b.high, b.low, b.close, settings.atr_period)
    horizon = volatility_scaled_horizon(atr, settings)
    upper = b.close + settings.take_profit_atr * atr
    lower = b.close - settings.stop_loss_atr * atr
    exit_index, touch = first_touch(b.high, b.low, upper, lower, horizon)
    resolved = touch != Touch.UNRESOLVED
    exit_close = b.close[np.maximum(exit_index, 0)]
    both_as_stop = settings.both_hit == "stop"
    exit_price = np.select(
        [touch == Touch.UPPER, (touch == Touch.LOWER) | ((touch == Touch.BOTH) & both_as_stop)],
        [upper, lower],
        exit_close,
    )
    returns = exit_price / b.close - 1.0
    label = np.select(
        [touch == Touch.UPPER, touch == Touch.LOWER, touch == Touch.BOTH],
        [1, -1, -1 if both_as_stop else 0],
        np.sign(returns) if settings.neither_hit == "sign" else 0,
    ).astype(np.int8)
    return _label_frame(
        "tb",
        b.time,
        pl.Series(label).set(pl.Series(~resolved), None),
        b.t1(exit_index, resolved),
        tb_return=pl.Series(returns.astype(np.float32)).set(pl.Series(~resolved), None),
        tb_horizon=pl.Series(horizon.astype(np.int32)),
    )


def ema_cross_side(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """+1 on the bar where the fast EMA closes above the slow one, -1 below, else 0."""
    return cross_side(indicators.ema(close, fast) - indicators.ema(close, slow))


def cross_side(spread: np.ndarray) -> np.ndarray:
    """+1 where `spread` turns positive after being negative, -1 for the reverse, else 0.

    Bars where the spread is exactly 0 keep the previous side, so a cross that passes
    through equality is one cross, marked where it completes; NaN (warm-up) is no side.
    """
    sign = pl.Series(np.sign(spread)).fill_nan(None).replace(0.0, None)
    held = sign.forward_fill().fill_null(0.0).to_numpy()
    side = np.zeros(spread.size, dtype=np.int8)
    crossed = (sign.to_numpy()[1:] == held[1:]) & (held[:-1] != 0) & (held[1:] != held[:-1])
    side[1:][crossed] = held[1:][crossed]
    return side


def meta_labels(bars: pl.DataFrame, settings: LabelSettings) -> pl.DataFrame:
    """`meta_side` of the base signal and `meta_label`/`meta_t1` for each event, null elsewhere."""
    b = _Bars.of(bars)
    atr = indicators.atr(b.high, b.low, b.close, settings.atr_period)
    side = ema_cross_side(b.close, settings.signal_fast, settings.signal_slow)
    event = (side != 0) & ~np.isnan(atr)
    take = b.close + side * settings.take_profit_atr * atr
    stop = b.close - side * settings.stop_loss_atr * atr
    long = side > 0
    upper = np.where(event, np.where(long, take, stop), np.nan)
    lower = np.where(event, np.where(long, stop, take), np.nan)
    horizon = np.full(b.close.size, settings.max_hold_bars, dtype=np.int64)
    exit_index, touch = first_touch(b.high, b.low, upper, lower, horizon)
    resolved = touch != Touch.UNRESOLVED
    take_first = np.where(long, touch == Touch.UPPER, touch == Touch.LOWER)
    no_label = pl.Series(~resolved)
    return _label_frame(
        "meta",
        b.time,
        pl.Series(take_first.astype(np.int8)).set(no_label, None),
        b.t1(exit_index, resolved),
        meta_side=pl.Series(side).set(pl.Series(~event), None),
    )


def label_bars(bars: pl.DataFrame, settings: LabelSettings) -> pl.DataFrame:
    """Triple-barrier and meta-labels side by side, one row per bar."""
    meta = meta_labels(bars, settings).drop(TIME)
    return pl.concat([triple_barrier_labels(bars, settings), meta], how="horizontal")
