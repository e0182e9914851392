"""Strategy statistics from a list of closed trades, for backtests and prop-firm style checks.

Trades are per-trade fractional returns on equity, net of costs, in exit order; equity
compounds from 1.0, so equity after trade k is prod(1 + r_1 .. r_k). Equity is only known
at trade exits here, so every drawdown is measured at exits: open-trade excursions between
exits are the backtest kernel's business, not something a trade list can recover.

Days are FX trading days as `forex_assets.market.fx_calendar.FxCalendar.trading_day`
numbers them: with the default 17:00 New York close a loss at 16:59 and one at 17:01 are
two days' losses, as a prop firm's daily-loss rule counts them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import pairwise

import numpy as np

from forex_assets.market.fx_calendar import weekday


class TradeInputError(ValueError):
    """A trade list that cannot be measured; the message names what was passed."""


@dataclass(frozen=True)
class TradingMetrics:
    """Summary of one trade list.

    With no trades nothing was risked: net_profit and both drawdowns are 0, the ratios
    and per-trade averages are NaN (undefined, not zero skill), trades and trading_days 0.

    trades: number of closed trades.
    net_profit: final equity / initial equity - 1.
    sharpe, sortino: annualized, from daily returns (see `trading_metrics`).
    max_drawdown: largest peak-to-trough fall of equity, a positive fraction of the peak.
    worst_daily_drawdown: largest fall within one trading day from that day's running
        peak, a positive fraction of the day's starting equity.
    profit_factor: sum of winning returns / |sum of losing returns|.
    win_rate: share of trades with a positive return.
    expectancy: mean trade return.
    sqn: Van Tharp's system quality number, sqrt(n) x mean / std of trade returns.
    trading_days: days on which at least one trade closed (what minimum-trading-day
        rules count).
    """

    trades: int
    net_profit: float
    sharpe: float
    sortino: float
    max_drawdown: float
    worst_daily_drawdown: float
    profit_factor: float
    win_rate: float
    expectancy: float
    sqn: float
    trading_days: int

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in asdict(self).items()}


def daily_returns(trade_returns: np.ndarray, exit_day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compounded return of each trading day from the first exit day to the last.

    Every weekday in that span is a day, with return 0 when nothing closed: a strategy
    that sits out is still exposed to the calendar, and dropping its idle days would
    shrink the day count and the measured volatility and so inflate Sharpe. Saturdays and
    Sundays on the session clock (the weekend closure) are days only if a trade closed on
    one, as one stamped exactly at Friday's 17:00 close does.
    """
    returns, days = _validated(trade_returns, exit_day)
    if days.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    span = np.arange(days[0], days[-1] + 1, dtype=np.int64)
    calendar = span[(weekday(span) < 5) | np.isin(span, days)]
    growth = np.ones(calendar.size)
    np.multiply.at(growth, np.searchsorted(calendar, days), 1.0 + returns)
    return calendar, growth - 1.0


def trading_metrics(
    trade_returns: np.ndarray, exit_day: np.ndarray, *, periods_per_year: int = 252
) -> TradingMetrics:
    """Metrics of a trade list; never raises for an empty one (see `TradingMetrics`).

    Sharpe is mean / std (ddof=1) of `daily_returns`, and Sortino is mean / downside
    deviation sqrt(mean(min(r, 0)^2)) of the same days, both times sqrt(periods_per_year).
    Either is NaN with fewer than two days or a zero deviation (no daily variation, or no
    losing day for Sortino): the ratio is undefined there, and an infinite or zero stand-in
    would win or lose every comparison for no reason.
    """
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, int | np.integer):
        raise TradeInputError(f"periods_per_year={periods_per_year!r} must be an int, e.g. 252.")
    if periods_per_year < 1:
        raise TradeInputError(f"periods_per_year={periods_per_year} must be at least 1.")
    returns, days = _validated(trade_returns, exit_day)
    n = returns.size
    equity = np.concatenate(([1.0], np.cumprod(1.0 + returns)))
    sharpe, sortino = _annualized_ratios(daily_returns(returns, days)[1], periods_per_year)
    return TradingMetrics(
        trades=n,
        net_profit=float(equity[-1] - 1.0),
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=float(np.max(1.0 - equity / np.maximum.accumulate(equity))),
        worst_daily_drawdown=_worst_daily_drawdown(equity, days),
        profit_factor=_profit_factor(returns),
        win_rate=float(np.mean(returns > 0)) if n else np.nan,
        expectancy=float(returns.mean()) if n else np.nan,
        sqn=_ratio(np.sqrt(n) * returns.mean(), returns.std(ddof=1)) if n >= 2 else np.nan,
        trading_days=int(np.unique(days).size),
    )


def _annualized_ratios(daily: np.ndarray, periods_per_year: int) -> tuple[float, float]:
    if daily.size < 2:
        return np.nan, np.nan
    mean = daily.mean()
    downside = np.sqrt(np.mean(np.minimum(daily, 0.0) ** 2))
    scale = math.sqrt(periods_per_year)
    return _ratio(mean, daily.std(ddof=1)) * scale, _ratio(mean, downside) * scale


def _worst_daily_drawdown(equity: np.ndarray, days: np.ndarray) -> float:
    """Largest (running intraday peak - equity) / day-start equity over all days.

    Prop firms measure the daily loss limit from the day's starting equity, so the
    denominator is the day start even when the day first ran up; the peak is the running
    one within the day (day start included), so a day that gains and then gives it back
    counts the give-back. Because of that denominator the value can exceed 1 after an
    intraday run-up of more than 100%.
    """
    day_bounds = np.concatenate(([0], np.flatnonzero(np.diff(days)) + 1, [days.size]))
    worst = 0.0
    for start, stop in pairwise(day_bounds):
        path = equity[start : stop + 1]  # equity[start] is the day-start equity
        worst = max(worst, float(np.max(np.maximum.accumulate(path) - path) / path[0]))
    return worst


def _profit_factor(returns: np.ndarray) -> float:
    """Gains / |losses|: inf when only wins, NaN when there is neither a win nor a loss."""
    gains = returns[returns > 0].sum()
    losses = -returns[returns < 0].sum()
    if losses > 0:
        return float(gains / losses)
    return np.inf if gains > 0 else np.nan


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else np.nan


def _validated(trade_returns: np.ndarray, exit_day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    returns = np.asarray(trade_returns, dtype=np.float64)
    days = np.asarray(exit_day)
    if returns.ndim != 1 or days.shape != returns.shape:
        raise TradeInputError(
            f"trade_returns of shape {returns.shape} and exit_day of shape {days.shape} must "
            "be 1-D arrays of the same length, one entry per closed trade."
        )
    if returns.size == 0:
        return returns, days.astype(np.int64)
    if not np.issubdtype(days.dtype, np.integer):
        raise TradeInputError(
            f"exit_day has dtype {days.dtype}; pass integer trading-day numbers, e.g. "
            "FxCalendar().trading_day(exit_time_utc_us)."
        )
    if not np.isfinite(returns).all() or returns.min() <= -1.0:
        raise TradeInputError(
            f"trade_returns must be finite and above -1 (min {returns.min()!r}): a return of "
            "-1 wipes out equity, after which compounding means nothing; pass fractional "
            "returns on equity, e.g. 0.01 for +1%."
        )
    if (np.diff(days) < 0).any():
        raise TradeInputError(
            f"exit_day decreases at trade {int(np.argmax(np.diff(days) < 0)) + 1}; pass "
            "trades in exit order (sort by exit time), since equity compounds in that order."
        )
    return returns, days.astype(np.int64)
