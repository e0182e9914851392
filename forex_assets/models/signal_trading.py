"""Trading the out-of-fold signals: one position at a time, held to its label's end.

A row's edge is P(up) - P(down). Above `threshold` the strategy buys, below -threshold it
sells, at the row's close; the trade lives until the row's triple-barrier end (t1) and
earns the barrier trade's return (negated for a sell) minus the round-trip cost. While
a trade is open, new signals are ignored, so trades never overlap and each return is
earned once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

UP, DOWN = 2, 0  # class indices of +1 and -1


@dataclass(frozen=True)
class SignalTrades:
    entry_rows: np.ndarray
    sides: np.ndarray
    returns: np.ndarray  # net of costs
    exit_us: np.ndarray


@njit(cache=True, nogil=True)
def _trade(edge, t0, t1, trade_return, cost, threshold):
    n = edge.size
    entries = np.empty(n, dtype=np.int64)
    sides = np.empty(n, dtype=np.int8)
    count = 0
    free_at = np.iinfo(np.int64).min
    for i in range(n):
        if t0[i] < free_at or np.isnan(edge[i]):
            continue
        side = 1 if edge[i] > threshold else (-1 if edge[i] < -threshold else 0)
        if side == 0:
            continue
        entries[count] = i
        sides[count] = side
        count += 1
        free_at = t1[i]
    entries = entries[:count]
    sides = sides[:count]
    returns = sides * trade_return[entries] - cost[entries]
    return entries, sides, returns


def trade_signals(
    proba: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    trade_return: np.ndarray,
    cost: np.ndarray,
    threshold: float,
) -> SignalTrades:
    """Trades of one probability history; `cost` is the round-trip cost per row (fraction)."""
    edge = (proba[:, UP] - proba[:, DOWN]).astype(np.float64)
    entries, sides, returns = _trade(
        edge, t0, t1, np.asarray(trade_return, dtype=np.float64), cost, float(threshold)
    )
    return SignalTrades(entries, sides, returns, np.asarray(t1)[entries])


def round_trip_cost(
    close: np.ndarray, spread: np.ndarray, pip_size: float, fallback_pips: float, commission: float
) -> np.ndarray:
    """Each row's round-trip cost as a fraction of price.

    The bar's mean spread where the data has one (a round trip crosses it once), else
    `fallback_pips`, plus `commission` (a fraction per round trip).
    """
    if fallback_pips < 0 or commission < 0 or not pip_size > 0:
        raise ValueError(
            f"fallback_pips={fallback_pips!r} and commission={commission!r} must be >= 0 and "
            f"pip_size={pip_size!r} > 0: a negative cost would pay the strategy for trading."
        )
    if (spread < 0).any():
        row = int(np.flatnonzero(spread < 0)[0])
        raise ValueError(
            f"spread[{row}]={spread[row]!r} is negative; a spread is ask - bid. Fix the bars' "
            "spread column (or leave it null to use fallback_pips)."
        )
    crossed = np.where(np.isnan(spread), fallback_pips * pip_size, spread)
    return crossed / close + commission
