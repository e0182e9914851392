"""Price channels: Donchian and Keltner."""

from __future__ import annotations

from forex_assets.features import indicators as ind
from forex_assets.features.indicator_definition import Indicator, multiplier, period

INDICATORS = (
    Indicator(
        "donchian", "Donchian channel: highest high, lowest low, midpoint", (period(),),
        ("upper", "lower", "middle"),
        lambda p, a: ind.donchian(p.high, p.low, a["period"]), False,
    ),
    Indicator(
        "keltner", "Keltner channel: EMA(period) +- multiplier x ATR(atr_period)",
        (period(), period("atr_period", 1), multiplier("multiplier")), ("upper", "lower"),
        lambda p, a: ind.keltner(p.ema(a["period"]), p.atr(a["atr_period"]), a["multiplier"]),
        False,
    ),
)  # fmt: skip
