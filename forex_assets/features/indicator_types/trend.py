"""Trend strength."""

from __future__ import annotations

from forex_assets.features import indicators as ind
from forex_assets.features.indicator_definition import Indicator, period

INDICATORS = (
    Indicator(
        "adx", "ADX with +DI and -DI", (period(),), ("adx", "plus_di", "minus_di"),
        lambda p, a: ind.adx(p.high, p.low, p.close, a["period"]), True,
    ),
)  # fmt: skip
