"""The indicator registry: names, parameters, output columns, and how to compute a set.

A feature configuration names indicators and parameter sets (`rsi` with periods 9, 14
and 21); the registry knows what each name means, which parameters it takes and which
values make sense, and turns a validated set into columns. Column names carry their
parameters (`rsi_14`, `bbands_20_2p5_upper`; a decimal point becomes `p` so every name is
a plain SQL identifier). Indicators are collected from the modules of
`forex_assets.features.indicator_types`, so adding one never edits this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from forex_assets.features import indicator_types
from forex_assets.features.indicator_definition import Indicator, ParamValue, PriceInputs
from forex_assets.market.bar_schema import TIME
from forex_assets.plugins import collect


class IndicatorRegistryError(ValueError):
    """An indicator module that does not define indicators the registry can use."""


def discover_indicators() -> dict[str, Indicator]:
    """Every `Indicator` of every module in `indicator_types`, by name."""
    found = collect(
        indicator_types, "INDICATORS", Indicator, many=True, error=IndicatorRegistryError
    )
    return {registered.item.name: registered.item for registered in found}


INDICATORS: dict[str, Indicator] = discover_indicators()


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
