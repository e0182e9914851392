"""The indicator registry: names, parameters, output columns, and how to compute a set.

A feature configuration names indicators and parameter sets (`rsi` with periods 9, 14
and 21); this module knows what each name means, which parameters it takes and which
values make sense, and turns a validated set into columns. Column names carry their
parameters (`rsi_14`, `bbands_20_2p5_upper`; a decimal point becomes `p` so every name is
a plain SQL identifier).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from forex_assets.features import indicators as ind
from forex_assets.market.bar_schema import TIME
from forex_assets.market.sessions import SESSIONS, session_flags

ParamValue = int | float


@dataclass(frozen=True)
class Param:
    """One parameter: integer periods are at least `minimum`; multipliers are positive."""

    name: str
    kind: type
    minimum: float


@dataclass
class PriceInputs:
    """A timeframe's prices as contiguous float64 arrays, plus pieces shared by indicators.

    Keltner needs an EMA and an ATR the set usually computes anyway, and three
    volatility measures need the same log returns: `shared` computes each piece once.
    """

    time_us: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    _shared: dict[tuple, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_bars(cls, bars: pl.DataFrame) -> PriceInputs:
        def column(name: str) -> np.ndarray:
            return np.ascontiguousarray(bars.get_column(name).cast(pl.Float64).to_numpy())

        return cls(
            time_us=bars.get_column(TIME).dt.epoch("us").to_numpy(),
            open=column("open"),
            high=column("high"),
            low=column("low"),
            close=column("close"),
        )

    def shared(self, key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def ema(self, period: int) -> np.ndarray:
        return self.shared(("ema", period), lambda: ind.ema(self.close, period))

    def atr(self, period: int) -> np.ndarray:
        return self.shared(
            ("atr", period), lambda: ind.atr(self.high, self.low, self.close, period)
        )

    def returns(self) -> np.ndarray:
        return self.shared(("log_returns",), lambda: ind.log_returns(self.close))


Outputs = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Indicator:
    """What a configuration name means.

    `talib_reference` marks indicators whose values are TA-Lib's own (parity-tested
    against TA-Lib to 1e-9); the others are defined in `indicators` and tested against
    their definition. `check` rejects parameter combinations that cannot work.
    """

    name: str
    summary: str
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    compute: Callable[[PriceInputs, Mapping[str, ParamValue]], Outputs]
    talib_reference: bool
    check: Callable[[Mapping[str, ParamValue]], str | None] | None = None


def _period(name: str = "period", minimum: int = 2) -> Param:
    return Param(name, int, minimum)


def _multiplier(name: str) -> Param:
    return Param(name, float, 0.0)


def _fast_below_slow(params: Mapping[str, ParamValue]) -> str | None:
    if params["fast"] >= params["slow"]:
        return f"fast={params['fast']} must be shorter than slow={params['slow']}"
    return None


def _one(value: np.ndarray) -> Outputs:
    return (value,)


_INDICATORS = (
    Indicator(
        "sma", "simple moving average of close", (_period(),), ("",),
        lambda p, a: _one(ind.sma(p.close, a["period"])), True,
    ),
    Indicator(
        "ema", "exponential moving average of close", (_period(),), ("",),
        lambda p, a: _one(p.ema(a["period"])), True,
    ),
    Indicator(
        "wma", "linearly weighted moving average of close", (_period(),), ("",),
        lambda p, a: _one(ind.wma(p.close, a["period"])), True,
    ),
    Indicator(
        "rsi", "Wilder's relative strength index", (_period(),), ("",),
        lambda p, a: _one(ind.rsi(p.close, a["period"])), True,
    ),
    Indicator(
        "macd", "MACD line, signal and histogram",
        (_period("fast"), _period("slow"), _period("signal", 1)), ("line", "signal", "hist"),
        lambda p, a: ind.macd(p.close, a["fast"], a["slow"], a["signal"]), True,
        _fast_below_slow,
    ),
    Indicator(
        "bbands", "Bollinger bands (simple average, population deviation) and width",
        (_period(), _multiplier("nbdev")), ("upper", "middle", "lower", "width"),
        lambda p, a: ind.bollinger(p.close, a["period"], a["nbdev"]), True,
    ),
    Indicator(
        "atr", "Wilder's average true range", (_period(minimum=1),), ("",),
        lambda p, a: _one(p.atr(a["period"])), True,
    ),
    Indicator(
        "natr", "ATR as a percentage of close", (_period(minimum=1),), ("",),
        lambda p, a: _one(ind.natr(p.high, p.low, p.close, a["period"])), True,
    ),
    Indicator(
        "adx", "ADX with +DI and -DI", (_period(),), ("adx", "plus_di", "minus_di"),
        lambda p, a: ind.adx(p.high, p.low, p.close, a["period"]), True,
    ),
    Indicator(
        "cci", "commodity channel index", (_period(),), ("",),
        lambda p, a: _one(ind.cci(p.high, p.low, p.close, a["period"])), True,
    ),
    Indicator(
        "stoch", "slow stochastic %K and %D",
        (_period("k_period", 1), _period("k_smooth", 1), _period("d_period", 1)), ("k", "d"),
        lambda p, a: ind.stochastic(
            p.high, p.low, p.close, a["k_period"], a["k_smooth"], a["d_period"]
        ),
        True,
    ),
    Indicator(
        "willr", "Williams %R", (_period(),), ("",),
        lambda p, a: _one(ind.williams_r(p.high, p.low, p.close, a["period"])), True,
    ),
    Indicator(
        "mom", "momentum: close minus close `period` bars ago", (_period(minimum=1),), ("",),
        lambda p, a: _one(ind.momentum(p.close, a["period"])), True,
    ),
    Indicator(
        "roc", "rate of change in percent", (_period(minimum=1),), ("",),
        lambda p, a: _one(ind.rate_of_change(p.close, a["period"])), True,
    ),
    Indicator(
        "cmo", "Chande momentum oscillator", (_period(),), ("",),
        lambda p, a: _one(ind.cmo(p.close, a["period"])), True,
    ),
    Indicator(
        "donchian", "Donchian channel: highest high, lowest low, midpoint", (_period(),),
        ("upper", "lower", "middle"),
        lambda p, a: ind.donchian(p.high, p.low, a["period"]), False,
    ),
    Indicator(
        "keltner", "Keltner channel: EMA(period) +- multiplier x ATR(atr_period)",
        (_period(), _period("atr_period", 1), _multiplier("multiplier")), ("upper", "lower"),
        lambda p, a: ind.keltner(p.ema(a["period"]), p.atr(a["atr_period"]), a["multiplier"]),
        False,
    ),
    Indicator(
        "log_return", "log return over `period` bars", (_period(minimum=1),), ("",),
        lambda p, a: _one(ind.log_return(p.close, a["period"])), False,
    ),
    Indicator(
        "realized_vol", "root mean square of one-bar log returns", (_period(),), ("",),
        lambda p, a: _one(ind.realized_volatility(p.returns(), a["period"])), False,
    ),
    Indicator(
        "ewma_vol", "exponentially weighted volatility of one-bar log returns", (_period("span"),),
        ("",), lambda p, a: _one(ind.ewma_volatility(p.returns(), a["span"])), False,
    ),
    Indicator(
        "zscore", "(close - SMA) / standard deviation", (_period(),), ("",),
        lambda p, a: _one(ind.zscore(p.close, a["period"])), False,
    ),
    Indicator(
        "candle", "upper wick, lower wick and body as shares of the bar's range", (),
        ("upper_wick", "lower_wick", "body"),
        lambda p, a: ind.candle_shape(p.open, p.high, p.low, p.close), False,
    ),
    Indicator(
        "session", "bar opens inside the Asia / London / New York session (DST-aware)", (),
        tuple(s.name for s in SESSIONS),
        lambda p, a: tuple(session_flags(p.time_us).values()), False,
    ),
)  # fmt: skip
INDICATORS: dict[str, Indicator] = {indicator.name: indicator for indicator in _INDICATORS}


def _format_value(value: ParamValue) -> str:
    """2 -> "2", 2.0 -> "2", 2.5 -> "2p5": the shortest text that round-trips the value."""
    if isinstance(value, float) and not value.is_integer():
        return repr(value).replace(".", "p").replace("-", "m").replace("+", "")
    return str(int(value))


@dataclass(frozen=True)
class IndicatorSpec:
    """One configured instance: an indicator name and a full parameter assignment."""

    name: str
    params: tuple[tuple[str, ParamValue], ...]

    @property
    def indicator(self) -> Indicator:
        return INDICATORS[self.name]

    @property
    def prefix(self) -> str:
        return "_".join([self.name, *(_format_value(v) for _, v in self.params)])

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(
            self.prefix if not suffix else f"{self.prefix}_{suffix}"
            for suffix in self.indicator.outputs
        )

    def compute(self, prices: PriceInputs) -> dict[str, np.ndarray]:
        values = self.indicator.compute(prices, dict(self.params))
        return dict(zip(self.columns, values, strict=True))


def feature_columns(specs: Sequence[IndicatorSpec]) -> list[str]:
    return [column for spec in specs for column in spec.columns]


def compute_indicators(
    bars: pl.DataFrame, specs: Sequence[IndicatorSpec], float32: bool = False
) -> pl.DataFrame:
    """Every configured indicator on `bars` (sorted by time), one column per output.

    Keeps `time` and, for resampled bars, `close_time` and `complete`, so a consumer can
    tell when each row's values became known. Values are float64 (TA-Lib's precision);
    `float32` narrows them for storage.
    """
    prices = PriceInputs.from_bars(bars)
    keys = [name for name in (TIME, "close_time", "complete") if name in bars.columns]
    # Narrowing each output as it is computed keeps one wide copy of the set in memory.
    values: dict[str, np.ndarray] = {}
    for spec in specs:
        for column, array in spec.compute(prices).items():
            values[column] = array.astype(np.float32) if float32 else array
    return pl.concat([bars.select(keys), pl.DataFrame(values)], how="horizontal")
