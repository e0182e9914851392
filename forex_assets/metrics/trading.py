"""Strategy statistics from a list of closed trades, for backtests and prop-firm style checks.

Trades are per-trade fractional returns on equity, net of costs, in exit order; equity
compounds from 1.0, so equity after trade k is prod(1 + r_1 .. r_k) and trade k's P&L is
the equity change it made, in units of the initial equity. The metrics are
`forex_assets.metrics.performance`'s, with the same names and formulas as the backtest
kernel's; only the path differs: equity is known at exits alone, so both drawdowns see
exits, not the open-trade excursions a marked backtest sees (they can only be smaller).

Days are FX trading days as `forex_assets.market.fx_calendar.FxCalendar.trading_day`
numbers them: with the default 17:00 New York close a loss at 16:59 and one at 17:01 are
two days' losses, as a prop firm's daily-loss rule counts them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from forex_assets.market.fx_calendar import trading_month, weekday
from forex_assets.metrics.performance import METRIC_NAMES, fill_metrics


class TradeInputError(ValueError):
    """A trade list that cannot be measured; the message names what was passed."""


@dataclass(frozen=True)
class TradingMetrics:
    """Summary of one trade list: `METRIC_NAMES` (defined in `metrics.performance`) plus
    `trading_days`, the days on which at least one trade closed (what minimum-trading-day
    rules count).

    With no trades nothing was risked: net_profit and both drawdowns are 0, the ratios
    and per-trade averages are NaN (undefined, not zero skill), trades and trading_days 0.
    """

    net_profit: float
    sharpe: float
    sortino: float
    max_drawdown: float
    worst_daily_drawdown: float
    profit_factor: float
    win_rate: float
    expectancy: float
    sqn: float
    trades: int
    monthly_consistency: float
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
    calendar = _exit_calendar(days)
    growth = np.ones(calendar.size)
    np.multiply.at(growth, np.searchsorted(calendar, days), 1.0 + returns)
    return calendar, growth - 1.0


def _exit_calendar(days: np.ndarray) -> np.ndarray:
    """Every weekday from the first exit day to the last, plus any exit day besides."""
    if days.size == 0:
        return np.empty(0, dtype=np.int64)
    span = np.arange(days[0], days[-1] + 1, dtype=np.int64)
    return span[(weekday(span) < 5) | np.isin(span, days)]


def trading_metrics(
    trade_returns: np.ndarray,
    exit_day: np.ndarray,
    *,
    days: np.ndarray | None = None,
    periods_per_year: int = 252,
) -> TradingMetrics:
    """Metrics of a trade list; never raises for an empty one (see `TradingMetrics`).

    `days` are the evaluated trading days, sorted (a backtest's `Market.days`); by default
    the days of `daily_returns`. Sharpe and Sortino are annualized with `periods_per_year`
    from each day's return (end / start - 1); either is NaN with fewer than two days or a
    zero deviation: the ratio is undefined there, and an infinite or zero stand-in would
    win or lose every comparison for no reason.
    """
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, int | np.integer):
        raise TradeInputError(f"periods_per_year={periods_per_year!r} must be an int, e.g. 252.")
    if periods_per_year < 1:
        raise TradeInputError(f"periods_per_year={periods_per_year} must be at least 1.")
    returns, exits = _validated(trade_returns, exit_day)
    calendar = _exit_calendar(exits) if days is None else _checked_days(days, exits)
    equity = np.concatenate(([1.0], np.cumprod(1.0 + returns)))
    pnl = np.diff(equity)
    # Day d ends at the equity after its last exit; its lowest point is the lowest equity
    # after any of its exits, or its start.
    day_end = equity[np.searchsorted(exits, calendar, side="right")]
    day_start = np.concatenate(([1.0], day_end[:-1]))
    day_min = day_start.copy()
    np.minimum.at(day_min, np.searchsorted(calendar, exits), equity[1:])
    monthly = _monthly_pnl(pnl, exits)
    mean = float(pnl.mean()) if pnl.size else 0.0
    values = np.empty(len(METRIC_NAMES))
    fill_metrics(
        values, day_start, day_min, day_end, 1.0, float(equity[-1]),
        float(np.max(1.0 - equity / np.maximum.accumulate(equity))), int(pnl.size),
        int((pnl > 0).sum()), float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum()), mean,
        float(((pnl - mean) ** 2).sum()), int(monthly.size), int((monthly > 0).sum()),
        int(periods_per_year),
    )  # fmt: skip
    named = dict(zip(METRIC_NAMES, values.tolist(), strict=True))
    named["trades"] = int(named["trades"])
    return TradingMetrics(**named, trading_days=int(np.unique(exits).size))


def _monthly_pnl(pnl: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """Closed P&L of each month in which a trade closed."""
    months, position = np.unique(trading_month(exits), return_inverse=True)
    total = np.zeros(months.size)
    np.add.at(total, position, pnl)
    return total


def _checked_days(days: np.ndarray, exits: np.ndarray) -> np.ndarray:
    calendar = np.asarray(days)
    if calendar.ndim != 1 or not np.issubdtype(calendar.dtype, np.integer):
        raise TradeInputError(
            f"days of shape {calendar.shape} and dtype {calendar.dtype} must be a 1-D array of "
            "integer trading-day numbers, e.g. Market.days."
        )
    if (np.diff(calendar) <= 0).any():
        raise TradeInputError("days must be strictly increasing: one entry per trading day.")
    missing = np.setdiff1d(exits, calendar)
    if missing.size:
        raise TradeInputError(
            f"trades close on day {int(missing[0])}, which is not among the {calendar.size} "
            "evaluated days; pass the days the trades were taken on."
        )
    return calendar.astype(np.int64)


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
