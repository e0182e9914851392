"""Returns over a horizon."""

from __future__ import annotations

from forex_assets.features import indicators as ind
from forex_assets.features.indicator_definition import Indicator, one, period

INDICATORS = (
    Indicator(
        "log_return", "log return over `period` bars", (period(minimum=1),), ("",),
        lambda p, a: one(ind.log_return(p.close, a["period"])), False,
    ),
)  # fmt: skip
