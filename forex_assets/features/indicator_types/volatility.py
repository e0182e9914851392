"""Volatility and dispersion: ranges, bands, return volatility, z-scores."""

from __future__ import annotations

from forex_assets.features import indicators as ind
from forex_assets.features.indicator_definition import Indicator, multiplier, one, period

INDICATORS = (
    Indicator(
        "atr", "Wilder's average true range", (period(minimum=1),), ("",),
        lambda p, a: one(p.atr(a["period"])), True,
    ),
    Indicator(
        "natr", "ATR as a percentage of close", (period(minimum=1),), ("",),
        lambda p, a: one(ind.natr(p.high, p.low, p.close, a["period"])), True,
    ),
    Indicator(
        "bbands", "Bollinger bands (simple average, population deviation) and width",
        (period(), multiplier("nbdev")), ("upper", "middle", "lower", "width"),
        lambda p, a: ind.bollinger(p.close, a["period"], a["nbdev"]), True,
    ),
    Indicator(
        "realized_vol", "root mean square of one-bar log returns", (period(),), ("",),
        lambda p, a: one(ind.realized_volatility(p.returns(), a["period"])), False,
    ),
    Indicator(
        "ewma_vol", "exponentially weighted volatility of one-bar log returns", (period("span"),),
        ("",), lambda p, a: one(ind.ewma_volatility(p.returns(), a["span"])), False,
    ),
    Indicator(
        "zscore", "(close - SMA) / standard deviation", (period(),), ("",),
        lambda p, a: one(ind.zscore(p.close, a["period"])), False,
    ),
)  # fmt: skip
