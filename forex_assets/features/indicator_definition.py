"""What an indicator is to the registry: its parameters, its outputs, how it computes.

Shared by every module in `forex_assets.features.indicator_types` (which define the
indicators) and by `indicator_set` (which collects them and computes configured sets),
so neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from forex_assets.features import indicators as ind
from forex_assets.market.bar_schema import TIME

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


def period(name: str = "period", minimum: int = 2) -> Param:
    return Param(name, int, minimum)


def multiplier(name: str) -> Param:
    return Param(name, float, 0.0)


def fast_below_slow(params: Mapping[str, ParamValue]) -> str | None:
    if params["fast"] >= params["slow"]:
        return f"fast={params['fast']} must be shorter than slow={params['slow']}"
    return None


def one(value: np.ndarray) -> Outputs:
    return (value,)
