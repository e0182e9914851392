"""Moving averages of close."""

from __future__ import annotations

from forex_assets.features import indicators as ind
from forex_assets.features.indicator_definition import Indicator, one, period

INDICATORS = (
    Indicator(
        "sma", "simple moving average of close", (period(),), ("",),
        lambda p, a: one(ind.sma(p.close, a["period"])), True,
    ),
    Indicator(
        "ema", "exponential moving average of close", (period(),), ("",),
        lambda p, a: one(p.ema(a["period"])), True,
    ),
    Indicator(
        "wma", "linearly weighted moving average of close", (period(),), ("",),
        lambda p, a: one(ind.wma(p.close, a["period"])), True,
    ),
)  # fmt: skip
