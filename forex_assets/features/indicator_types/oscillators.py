"""Momentum oscillators: where close stands against its recent past."""

from __future__ import annotations

from forex_assets.features import indicators as ind
from forex_assets.features.indicator_definition import Indicator, fast_below_slow, one, period

INDICATORS = (
    Indicator(
        "rsi", "Wilder's relative strength index", (period(),), ("",),
        lambda p, a: one(ind.rsi(p.close, a["period"])), True,
    ),
    Indicator(
        "macd", "MACD line, signal and histogram",
        (period("fast"), period("slow"), period("signal", 1)), ("line", "signal", "hist"),
        lambda p, a: ind.macd(p.close, a["fast"], a["slow"], a["signal"]), True,
        fast_below_slow,
    ),
    Indicator(
        "stoch", "slow stochastic %K and %D",
        (period("k_period", 1), period("k_smooth", 1), period("d_period", 1)), ("k", "d"),
        lambda p, a: ind.stochastic(
            p.high, p.low, p.close, a["k_period"], a["k_smooth"], a["d_period"]
        ),
        True,
    ),
    Indicator(
        "willr", "Williams %R", (period(),), ("",),
        lambda p, a: one(ind.williams_r(p.high, p.low, p.close, a["period"])), True,
    ),
    Indicator(
        "mom", "momentum: close minus close `period` bars ago", (period(minimum=1),), ("",),
        lambda p, a: one(ind.momentum(p.close, a["period"])), True,
    ),
    Indicator(
        "roc", "rate of change in percent", (period(minimum=1),), ("",),
        lambda p, a: one(ind.rate_of_change(p.close, a["period"])), True,
    ),
    Indicator(
        "cmo", "Chande momentum oscillator", (period(),), ("",),
        lambda p, a: one(ind.cmo(p.close, a["period"])), True,
    ),
    Indicator(
        "cci", "commodity channel index", (period(),), ("",),
        lambda p, a: one(ind.cci(p.high, p.low, p.close, a["period"])), True,
    ),
)  # fmt: skip
