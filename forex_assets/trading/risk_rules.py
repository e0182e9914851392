"""Pre-trade risk rules: may this order be placed now, on this account, at this size?

`check_order` answers with None (go) or a `Refusal` naming the rule and the numbers it
compared, so a refusal in a log or a table says exactly what to change. Market gates
(weekend, session, news, spread, slippage) come first, then the account's rules, in
`RULES` order; the first broken rule is the one named.

The loss rules judge the worst case, not the present: if every open or reserved position
and this one hit their stops together, equity falls to ``balance - open_risk - risk``
(each position's loss at its stop, commission included, counted from its entry). An
accepted order can therefore never take the account past a limit on a stop-out; only a
gap through a stop can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from forex_assets.market.fx_calendar import week_minutes
from forex_assets.market.sessions import US_PER_MINUTE, session_flags
from forex_assets.prop_firms.rules import TOLERANCE
from forex_assets.trading.risk_limits import NewsCalendar, RiskLimits

RULES = (
    "invalid_order",
    "weekend",
    "session",
    "news_blackout",
    "spread",
    "slippage",
    "cooldown",
    "max_trades_per_day",
    "max_open_positions",
    "daily_profit_lock",
    "position_size",
    "daily_loss_limit",
    "daily_peak_drawdown",
    "max_total_loss",
)


@dataclass(frozen=True)
class OrderRequest:
    """A market order a signal wants, before sizing. Prices are mid prices; distances,
    spread and slippage in price units; `confidence` in [0, 1] (0.5: no opinion)."""

    symbol: str
    side: int
    time_us: int
    price: float
    stop_distance: float
    take_distance: float | None = None
    spread: float = math.nan
    expected_slippage: float = 0.0
    confidence: float = 0.5
    source: str = ""


@dataclass(frozen=True)
class AccountState:
    """What the ledger knows about an account inside the reserving transaction."""

    initial_equity: float
    balance: float  # realized
    equity: float  # marked: balance plus open positions at their last mark
    high_water: float  # highest marked equity so far (initial included)
    day_start_equity: float
    day_peak_equity: float
    trades_today: int  # opened or reserved on this FX day
    open_positions: int  # filled or reserved, not yet closed
    open_risk: float  # their losses at their stops, from entry
    loss_streak: int
    last_loss_us: int | None

    @property
    def worst_equity(self) -> float:
        """Equity if every open and reserved position is stopped out."""
        return self.balance - self.open_risk


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str
    numbers: dict[str, float] = field(default_factory=dict)


def drawdown_used(limits: RiskLimits, state: AccountState) -> float:
    """Share in [0, 1] of the tighter loss limit (daily or total) the worst case uses up."""
    worst = state.worst_equity
    daily = (state.day_start_equity - worst) / (state.day_start_equity * limits.daily_loss_limit)
    reference = state.high_water if limits.trailing_drawdown else state.initial_equity
    total = (reference - worst) / (state.initial_equity * limits.max_total_loss)
    return float(min(1.0, max(0.0, daily, total)))


def check_market(
    limits: RiskLimits, request: OrderRequest, pip_size: float, news: NewsCalendar
) -> Refusal | None:
    """The gates that depend on the clock and the quote, not on the account."""
    since_open, to_close = week_minutes(request.time_us)
    if to_close <= 0:
        return Refusal(
            "weekend",
            "the FX market is closed (Friday 17:00 to Sunday 17:00 New York).",
            {"minutes_since_week_open": since_open},
        )
    if since_open < limits.week_open_buffer_minutes:
        return Refusal(
            "weekend",
            f"{since_open:.0f} min after the week opened, inside the "
            f"{limits.week_open_buffer_minutes:.0f} min opening buffer.",
            {"minutes_since_open": since_open, "limit": limits.week_open_buffer_minutes},
        )
    if to_close < limits.week_close_buffer_minutes:
        return Refusal(
            "weekend",
            f"{to_close:.0f} min before the week closes, inside the "
            f"{limits.week_close_buffer_minutes:.0f} min closing buffer (weekend gap risk).",
            {"minutes_to_close": to_close, "limit": limits.week_close_buffer_minutes},
        )
    if limits.sessions:
        flags = session_flags(np.array([request.time_us], dtype=np.int64))
        if not any(flags[name][0] for name in limits.sessions):
            return Refusal(
                "session",
                f"outside the allowed sessions {list(limits.sessions)}.",
                {"time_us": request.time_us},
            )
    event = news.blackout(request.symbol, request.time_us)
    if event is not None:
        minutes = (request.time_us - event.time_us) / US_PER_MINUTE
        return Refusal(
            "news_blackout",
            f"{event.currency} news {event.title!r} {minutes:+.0f} min away (blackout "
            f"{event.before_minutes:.0f} min before to {event.after_minutes:.0f} min after).",
            {"minutes_from_event": minutes},
        )
    spread_pips = request.spread / pip_size
    if limits.max_spread_pips is not None and spread_pips > limits.max_spread_pips + TOLERANCE:
        return Refusal(
            "spread",
            f"spread {spread_pips:.2f} pips exceeds the {limits.max_spread_pips} pip limit.",
            {"spread_pips": spread_pips, "limit": limits.max_spread_pips},
        )
    slippage_pips = request.expected_slippage / pip_size
    if (
        limits.max_slippage_pips is not None
        and slippage_pips > limits.max_slippage_pips + TOLERANCE
    ):
        return Refusal(
            "slippage",
            f"expected slippage {slippage_pips:.2f} pips exceeds the "
            f"{limits.max_slippage_pips} pip limit.",
            {"slippage_pips": slippage_pips, "limit": limits.max_slippage_pips},
        )
    return None


def check_account_gates(
    limits: RiskLimits, state: AccountState, request: OrderRequest
) -> Refusal | None:
    """Rules that refuse any new position whatever its size."""
    if (
        limits.loss_streak_limit is not None
        and state.loss_streak >= limits.loss_streak_limit
        and state.last_loss_us is not None
    ):
        paused = (request.time_us - state.last_loss_us) / US_PER_MINUTE
        if paused < limits.cooldown_minutes:
            return Refusal(
                "cooldown",
                f"{state.loss_streak} losses in a row: paused {paused:.0f} of "
                f"{limits.cooldown_minutes:.0f} min.",
                {
                    "loss_streak": state.loss_streak,
                    "minutes_since_loss": paused,
                    "cooldown_minutes": limits.cooldown_minutes,
                },
            )
    if limits.max_trades_per_day is not None and state.trades_today >= limits.max_trades_per_day:
        return Refusal(
            "max_trades_per_day",
            f"{state.trades_today} trades already opened or reserved today (limit "
            f"{limits.max_trades_per_day}).",
            {"trades_today": state.trades_today, "limit": limits.max_trades_per_day},
        )
    if limits.max_open_positions is not None and state.open_positions >= limits.max_open_positions:
        return Refusal(
            "max_open_positions",
            f"{state.open_positions} positions open or reserved (limit "
            f"{limits.max_open_positions}).",
            {"open_positions": state.open_positions, "limit": limits.max_open_positions},
        )
    if limits.daily_profit_lock is not None:
        gain = state.equity / state.day_start_equity - 1.0
        if gain >= limits.daily_profit_lock - TOLERANCE:
            return Refusal(
                "daily_profit_lock",
                f"the day is up {gain:.2%}, at or above the {limits.daily_profit_lock:.2%} "
                "profit lock; trading resumes next FX day.",
                {"day_gain": gain, "limit": limits.daily_profit_lock},
            )
    return None


def check_loss_limits(limits: RiskLimits, state: AccountState, risk: float) -> Refusal | None:
    """Would a stop-out of everything open plus `risk` (account currency) break a limit?"""
    worst = state.worst_equity - risk
    numbers = {
        "balance": state.balance,
        "open_risk": state.open_risk,
        "order_risk": risk,
        "worst_equity": worst,
    }
    daily = (state.day_start_equity - worst) / state.day_start_equity
    if daily > limits.daily_loss_limit + TOLERANCE:
        return Refusal(
            "daily_loss_limit",
            f"a stop-out of open positions ({state.open_risk:,.2f}) and this order "
            f"({risk:,.2f}) would lose {daily:.2%} of the day's start equity "
            f"{state.day_start_equity:,.2f} (limit {limits.daily_loss_limit:.2%}).",
            {
                **numbers,
                "day_start_equity": state.day_start_equity,
                "loss": daily,
                "limit": limits.daily_loss_limit,
            },
        )
    if limits.daily_peak_drawdown is not None:
        from_peak = (state.day_peak_equity - worst) / state.day_peak_equity
        if from_peak > limits.daily_peak_drawdown + TOLERANCE:
            return Refusal(
                "daily_peak_drawdown",
                f"a stop-out would fall {from_peak:.2%} below today's peak equity "
                f"{state.day_peak_equity:,.2f} (limit {limits.daily_peak_drawdown:.2%}).",
                {
                    **numbers,
                    "day_peak_equity": state.day_peak_equity,
                    "loss": from_peak,
                    "limit": limits.daily_peak_drawdown,
                },
            )
    reference = state.high_water if limits.trailing_drawdown else state.initial_equity
    total = (reference - worst) / state.initial_equity
    if total > limits.max_total_loss + TOLERANCE:
        below = "the high-water mark" if limits.trailing_drawdown else "the initial balance"
        return Refusal(
            "max_total_loss",
            f"a stop-out would put equity {total:.2%} of the initial balance below {below} "
            f"{reference:,.2f} (limit {limits.max_total_loss:.2%}).",
            {**numbers, "reference": reference, "loss": total, "limit": limits.max_total_loss},
        )
    return None
