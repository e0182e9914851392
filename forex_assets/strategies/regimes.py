"""Market regimes from ADX: trending, ranging, or in between.

ADX measures trend strength regardless of direction; the usual reading is a trend above
25 and a range below 20. Between the two the regime keeps its previous value
(hysteresis), so a market hovering at 22 does not flip regime every bar.
"""

from __future__ import annotations

import numpy as np
from numba import njit

import forex_assets.features.indicators as indicators

RANGE, TRANSITION, TREND = 0, 1, 2
REGIME_NAMES = {RANGE: "range", TRANSITION: "transition", TREND: "trend"}


@njit(cache=True)
def _hysteresis(adx: np.ndarray, enter_trend: float, enter_range: float) -> np.ndarray:
    out = np.full(adx.size, 1, dtype=np.int8)
    state = 1
    for i in range(adx.size):
        value = adx[i]
        if value == value:
            if value >= enter_trend:
                state = 2
            elif value <= enter_range:
                state = 0
        out[i] = state
    return out


def classify_adx(
    adx: np.ndarray, enter_trend: float = 25.0, enter_range: float = 20.0
) -> np.ndarray:
    """int8 regime per ADX value (TRANSITION until the first clear reading; NaN keeps state)."""
    if not enter_range < enter_trend:
        raise ValueError(
            f"enter_range={enter_range} must be below enter_trend={enter_trend}: the gap "
            "between them is the hysteresis band."
        )
    return _hysteresis(np.asarray(adx, dtype=np.float64), enter_trend, enter_range)


def adx_regimes(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14
) -> np.ndarray:
    """Regimes of a bar series from Wilder's ADX with the usual 25 / 20 levels."""
    return classify_adx(indicators.adx(high, low, close, period)[0])


def regime_shares(regimes: np.ndarray) -> dict[str, float]:
    counts = np.bincount(regimes.astype(np.int64), minlength=3)
    total = max(1, regimes.size)
    return {REGIME_NAMES[r]: float(counts[r] / total) for r in REGIME_NAMES}
