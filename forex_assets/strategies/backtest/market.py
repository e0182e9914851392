"""One instrument's bars as the contiguous arrays the kernel reads."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import polars as pl

from forex_assets.features.indicator_definition import PriceInputs
from forex_assets.market.fx_calendar import DEFAULT_CALENDAR, FxCalendar, trading_month
from forex_assets.strategies.backtest.errors import BacktestInputError


def _as_array(name: str, values: object, dtype: type) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=dtype)
    if array.ndim != 1:
        raise BacktestInputError(f"Market.{name} has shape {array.shape}; pass a 1-D array.")
    return array


@dataclass(frozen=True)
class Market:
    """One instrument's bars as contiguous arrays, in time order (see `kernel` for how each is used).

    `spread` is in price units (NaN: the contract's default); `day` is the FX trading day of
    each bar (days since 1970-01-01, as `FxCalendar.trading_day` returns), `month` the month index
    ``year x 12 + month - 1`` of that day. `day_index` numbers the distinct days 0, 1, ...
    and `days` lists them; both are derived, so every backtest on the market reuses them.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    atr: np.ndarray
    spread: np.ndarray
    day: np.ndarray
    month: np.ndarray
    day_index: np.ndarray = field(init=False, repr=False)
    days: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("open", "high", "low", "close", "atr", "spread"):
            object.__setattr__(self, name, _as_array(name, getattr(self, name), np.float64))
        for name in ("day", "month"):
            object.__setattr__(self, name, _as_array(name, getattr(self, name), np.int64))
        lengths = {f.name: getattr(self, f.name).size for f in fields(self) if f.init}
        if len(set(lengths.values())) != 1 or self.close.size == 0:
            raise BacktestInputError(
                f"Market arrays have lengths {lengths}; every array needs one entry per bar, "
                "and there must be at least one bar."
            )
        prices = np.stack([self.open, self.high, self.low, self.close])
        if not np.isfinite(prices).all():
            raise BacktestInputError(
                f"Market prices have {int((~np.isfinite(prices)).sum())} NaN or infinite "
                "values; drop or repair those bars first (a NaN price makes every fill NaN)."
            )
        broken = (self.high < np.maximum(self.open, self.close)) | (
            self.low > np.minimum(self.open, self.close)
        )
        if broken.any():
            bar = int(np.argmax(broken))
            raise BacktestInputError(
                f"bar {bar} has open={self.open[bar]}, high={self.high[bar]}, low="
                f"{self.low[bar]}, close={self.close[bar]}: high and low must bound open and "
                "close, or stops and gaps cannot be decided. Fix the bars."
            )
        if (self.spread < 0).any():
            bar = int(np.argmax(self.spread < 0))
            raise BacktestInputError(
                f"spread[{bar}]={self.spread[bar]} is negative; a spread is ask - bid in "
                "price units (NaN where unknown)."
            )
        for name in ("day", "month"):
            steps = np.diff(getattr(self, name))
            if (steps < 0).any():
                raise BacktestInputError(
                    f"Market.{name} decreases at bar {int(np.argmax(steps < 0)) + 1}; bars must "
                    "be in time order."
                )
        new_day = np.concatenate(([True], self.day[1:] != self.day[:-1]))
        object.__setattr__(self, "day_index", np.cumsum(new_day) - 1)
        object.__setattr__(self, "days", self.day[new_day])

    def __len__(self) -> int:
        return self.close.size

    @classmethod
    def from_bars(
        cls, bars: pl.DataFrame, calendar: FxCalendar = DEFAULT_CALENDAR, atr_period: int = 14
    ) -> Market:
        """Arrays of `bars` (time in UTC, open, high, low, close, nullable spread) with the
        indicator registry's ATR of `atr_period` bars (NaN during its warm-up); days are
        `calendar`'s trading days, so daily limits cut where the bars' daily close does."""
        missing = {"time", "open", "high", "low", "close", "spread"} - set(bars.columns)
        if missing:
            raise BacktestInputError(
                f"bars lack columns {sorted(missing)}; pass bars in the canonical schema "
                "(time, open, high, low, close, spread)."
            )
        if isinstance(atr_period, bool) or not isinstance(atr_period, int) or atr_period < 1:
            raise BacktestInputError(f"atr_period={atr_period!r} must be a whole number >= 1.")
        if not bars.get_column("time").is_sorted():
            raise BacktestInputError("bars are not sorted by time; sort them by `time` first.")
        prices = PriceInputs.from_bars(bars)
        day = calendar.trading_day(prices.time_us)
        return cls(
            open=prices.open,
            high=prices.high,
            low=prices.low,
            close=prices.close,
            atr=prices.atr(atr_period),
            spread=bars.get_column("spread").cast(pl.Float64).fill_null(np.nan).to_numpy(),
            day=day,
            month=trading_month(day),
        )
