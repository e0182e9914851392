"""The performance metrics, defined once for every equity path the project measures.

The backtest kernel measures a marked-to-market path (equity at every bar, the intrabar
worst included); `forex_assets.metrics.trading` measures a closed-trade list (equity known
only at exits). Both reduce their path to the same inputs: per evaluated trading day the
start, lowest and end equity; the largest fall from a running peak; and the trade P&L.
`fill_metrics` turns those into every metric, so a name means one formula on both paths,
and the only difference between them is what each path can see:

* net_profit: final equity / initial - 1.
* sharpe, sortino: mean daily return / its std (ddof=1), resp. / sqrt(mean(min(r, 0)^2)),
  times sqrt(periods_per_year), over the evaluated days (return = end / start - 1); NaN
  with fewer than two days or a zero deviation.
* max_drawdown: largest (running peak - a later equity) / running peak, the initial equity
  included in the peak.
* worst_daily_drawdown: largest (day start - day minimum) / day start, the prop-firm daily
  loss measure.
* profit_factor: winning P&L / |losing P&L| (inf with only wins, NaN with neither).
* win_rate: share of trades with positive P&L; expectancy: mean trade P&L / initial
  equity; sqn: sqrt(n) x mean / std (ddof=1) of trade P&L. NaN without (enough) trades.
* trades: trades closed.
* monthly_consistency: share of months with positive closed P&L among the months in which
  a trade closed (months of the FX trading day); NaN without trades.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

METRIC_NAMES = (
    "net_profit",
    "sharpe",
    "sortino",
    "max_drawdown",
    "worst_daily_drawdown",
    "profit_factor",
    "win_rate",
    "expectancy",
    "sqn",
    "trades",
    "monthly_consistency",
)
(
    NET,
    SHARPE,
    SORTINO,
    MAX_DRAWDOWN,
    WORST_DAILY_DRAWDOWN,
    PROFIT_FACTOR,
    WIN_RATE,
    EXPECTANCY,
    SQN,
    TRADES,
    MONTHLY_CONSISTENCY,
) = range(len(METRIC_NAMES))
PERIODS_PER_YEAR = 252


@njit(cache=True, nogil=True, error_model="numpy")
def fill_metrics(
    metrics: np.ndarray,
    daily_start: np.ndarray,
    daily_min: np.ndarray,
    daily_end: np.ndarray,
    initial_equity: float,
    final_equity: float,
    max_dd: float,
    trades: int,
    wins: int,
    gross_win: float,
    gross_loss: float,
    mean: float,
    m2: float,
    months: int,
    good_months: int,
    periods_per_year: int,
) -> None:
    """Fill `metrics` (`METRIC_NAMES` order) from the day arrays and the trade sums.

    The day arrays are each evaluated day's start, lowest and end equity; `max_dd` the
    largest fall from the running peak seen on the path; `mean` and `m2` Welford's running
    mean and sum of squared deviations of trade P&L; `months` / `good_months` the months
    with closed P&L and those where it was positive (see the module docstring).
    """
    n_days = daily_start.size
    mean_day = downside = worst_day = 0.0
    for d in range(n_days):
        r = daily_end[d] / daily_start[d] - 1.0
        mean_day += r
        downside += min(r, 0.0) ** 2
        worst_day = max(worst_day, (daily_start[d] - daily_min[d]) / daily_start[d])
    mean_day /= n_days
    downside = math.sqrt(downside / n_days)
    var_day = 0.0
    for d in range(n_days):
        var_day += (daily_end[d] / daily_start[d] - 1.0 - mean_day) ** 2
    std_day = math.sqrt(var_day / (n_days - 1)) if n_days > 1 else 0.0
    scale = math.sqrt(periods_per_year)
    metrics[NET] = final_equity / initial_equity - 1.0
    metrics[SHARPE] = mean_day / std_day * scale if std_day > 0 else np.nan
    metrics[SORTINO] = mean_day / downside * scale if n_days > 1 and downside > 0 else np.nan
    metrics[MAX_DRAWDOWN] = max_dd
    metrics[WORST_DAILY_DRAWDOWN] = worst_day
    if gross_loss > 0:
        metrics[PROFIT_FACTOR] = gross_win / gross_loss
    else:
        metrics[PROFIT_FACTOR] = np.inf if gross_win > 0 else np.nan
    metrics[WIN_RATE] = wins / trades if trades else np.nan
    metrics[EXPECTANCY] = mean / initial_equity if trades else np.nan
    std_trade = math.sqrt(m2 / (trades - 1)) if trades > 1 else 0.0
    metrics[SQN] = math.sqrt(trades) * mean / std_trade if std_trade > 0 else np.nan
    metrics[TRADES] = trades
    metrics[MONTHLY_CONSISTENCY] = good_months / months if months else np.nan
