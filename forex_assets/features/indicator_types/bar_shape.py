"""The bar itself: candle shape, and which trading session it opens in."""

from __future__ import annotations

from forex_assets.features import indicators as ind
from forex_assets.features.indicator_definition import Indicator
from forex_assets.market.sessions import SESSIONS, session_flags

INDICATORS = (
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
