"""The simulation: one serial numba loop per signal, and a parallel loop over candidates.

**Prices.** Bars are mid prices; the ask is mid + spread/2 and the bid mid - spread/2, with
the bar's own spread (a NaN spread is `Contract.default_spread_pips`). A position buys at
the ask and sells at the bid, so a round trip pays the full spread once: half at entry
and half at exit. Stops, take-profits and marks all use the exit side's price (the bid for
a long, the ask for a short), so a stop fills exactly at its level and the loss it caps is
exactly the stop distance, which is what position sizing assumes.

**Signals and entries.** ``signal[i]`` in {-1, 0, +1} is known at the close of bar i. When
flat, a nonzero signal enters at the open of bar i+1, never on bar i itself: a long buys at
``open[i+1] + spread[i+1]/2``, a short sells at ``open[i+1] - spread[i+1]/2``. A signal on
the last bar has no next bar and never enters; neither does one whose bar has a NaN (warm-
up) or non-positive ATR, since its stop distance would be meaningless, or one at an equity
of zero or less. One position at a time: while a position is open, signals in its own
direction are ignored and an opposite one exits at the next bar's open (reason
``opposite``, before that bar's stop or take-profit is looked at) without reversing; the
next signal after that may enter. A position that
closes during bar i or at its close leaves the trader flat at the close of bar i, so
``signal[i]`` can open the next position at bar i+1.

**Exits.** Stop and take-profit sit ``stop_atr x atr[i]`` and ``take_atr x atr[i]`` from the
entry price, with the ATR of the signal bar i. On every bar of the trade, the entry bar
included (from its open on):

1. stop: if the exit-side low (long) or high (short) reaches the stop, exit at the stop, or
   at the exit-side open when the bar opened beyond it (a gap fills at the open, not at the
   stop). The stop is checked first: a bar that touches both stop and take-profit is a
   stop, since the order of prices inside a bar is unknown and the loss is the safe guess.
   A stop that the trailing rule has moved exits as ``trail``, the original as ``stop``.
2. take-profit: if the exit-side high (long) or low (short) reaches it, exit at the
   take-profit, or at the open when the bar opened beyond it (a limit order fills at the
   better price).
3. max hold: when the bars held (the entry bar is the first) reach `max_hold_bars`, exit at
   the bar's exit-side close; on the last bar of the data any open position exits there as
   ``end`` (as ``max_hold`` when both apply).
4. trailing stop (``trail_atr > 0``): after a bar the position survives, the stop moves to
   the best mid close since entry (that bar's included) minus (long) or plus (short)
   ``trail_atr x atr[i]`` where that tightens it.

**Money.** Account currency is USD. P&L of a trade is ``side x (exit - entry) x units`` when
USD is the quote currency, divided by the exit price when USD is the base (USDJPY: a yen
P&L converted at the exit rate), minus ``commission_per_lot x lots`` per round trip. Lots
are ``risk_fraction x equity / (stop distance x value of a 1.0 price move per lot)``,
rounded down to `lot_step` and at least `min_lot`; for a USD-base pair the value uses the
entry price, so the realised stop loss differs slightly from the risk aimed at.

**Equity.** ``equity[j]`` is realised equity plus the open position marked at bar j's exit-
side close, net of the round-trip commission it will pay (its liquidation value).
``equity_low[j]`` is the worst equity inside bar j: the open position marked at the exit-
side low (long) or high (short), or at its stop fill when the stop was hit. Both are in
account currency.

**Days and metrics.** Days are FX trading days (`FxCalendar.trading_day`, the 17:00 New
York close unless `Market.from_bars` is given another calendar); each day in the data has a start equity
(the previous bar's `equity`, the initial equity for the first bar), a minimum (the lowest
`equity_low` of its bars, or the start when that is lower), an end equity (its last bar's
`equity`) and the number of trades opened on it. The metrics are
`forex_assets.metrics.performance.fill_metrics` of those days, the largest fall from the
running `equity` peak to a later `equity_low`, and the trade P&L.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from forex_assets.market.contract import lots_rounded_down, position_pnl, value_per_price_unit
from forex_assets.metrics.performance import PERIODS_PER_YEAR, fill_metrics
from forex_assets.strategies.backtest.records import (
    END,
    MAX_HOLD,
    OPPOSITE,
    STOP,
    TAKE,
    TRADE_RECORD,
    TRAIL,
)


# error_model="numpy": a zero divisor (a day that starts at zero equity after ruin) gives inf
# or NaN, as in numpy, instead of raising mid-run, and no division pays for a zero check.
@njit(cache=True, nogil=True, error_model="numpy")
def simulate(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    atr: np.ndarray,
    spread: np.ndarray,
    day_index: np.ndarray,
    month: np.ndarray,
    signal: np.ndarray,
    stop_atr: float,
    take_atr: float,
    max_hold: int,
    trail_atr: float,
    risk_fraction: float,
    initial_equity: float,
    contract_size: float,
    quote_is_account: bool,
    commission_per_lot: float,
    default_spread: float,
    lot_step: float,
    min_lot: float,
    daily_start: np.ndarray,
    daily_min: np.ndarray,
    daily_end: np.ndarray,
    daily_trades: np.ndarray,
    metrics: np.ndarray,
    record: bool,
    equity_out: np.ndarray,
    equity_low_out: np.ndarray,
    trades_out: np.ndarray,
) -> int:
    """Run one signal through the rules; fill the daily arrays and `metrics` (outputs).

    With `record`, also fills `equity_out`, `equity_low_out` (one per bar) and `trades_out`
    (`TRADE_RECORD`s; it needs one per possible entry, i.e. per nonzero signal). Returns
    the number of trades. Everything the metrics need is kept as running sums, so a batch
    candidate costs no per-bar memory.
    """
    n = close.size
    realized = equity = day_min = peak = initial_equity
    side = pending = entry_bar = held = 0
    sign = 0.0  # side as a float, so the per-bar arithmetic needs no int conversions
    exit_next = trailed = False
    entry_price = stop = take = best = units = lots = cost = 0.0
    stop_dist = take_dist = trail_dist = max_dd = 0.0
    day = current_month = -1
    trades = wins = months = good_months = 0
    gross_win = gross_loss = mean = m2 = month_pnl = 0.0
    for j in range(n):
        d = day_index[j]
        if d != day:
            if day >= 0:
                daily_end[day] = equity
                daily_min[day] = day_min
            day = d
            daily_start[d] = equity
            day_min = equity
            daily_trades[d] = 0
        worst = realized
        if side != 0 or pending != 0:
            half = spread[j]
            if half != half:
                half = default_spread
            half *= 0.5
            if pending != 0:
                side = pending
                sign = float(side)
                pending = 0
                entry_price = open_[j] + sign * half
                stop = entry_price - sign * stop_dist
                take = entry_price + sign * take_dist
                per_lot = stop_dist * value_per_price_unit(
                    contract_size, quote_is_account, entry_price
                )
                lots = max(lots_rounded_down(risk_fraction * realized / per_lot, lot_step), min_lot)
                units = lots * contract_size
                cost = commission_per_lot * lots
                best = -np.inf * sign
                entry_bar = j
                held = 0
                trailed = False
                daily_trades[d] += 1
            reason = -1
            exit_open = open_[j] - sign * half
            if exit_next:
                exit_price = worst_price = exit_open
                reason = OPPOSITE
                exit_next = False
            else:
                # Exit-side extremes: a long sells at the bid, a short buys at the ask.
                worst_price = low[j] - half if side > 0 else high[j] + half
                best_price = high[j] - half if side > 0 else low[j] + half
                if sign * (worst_price - stop) <= 0:
                    exit_price = worst_price = (
                        min(exit_open, stop) if side > 0 else max(exit_open, stop)
                    )
                    reason = TRAIL if trailed else STOP
                elif sign * (best_price - take) >= 0:
                    exit_price = max(exit_open, take) if side > 0 else min(exit_open, take)
                    reason = TAKE
                held += 1
                if reason < 0 and (held >= max_hold or j == n - 1):
                    exit_price = close[j] - sign * half
                    reason = MAX_HOLD if held >= max_hold else END
            worst = (
                realized
                - cost
                + position_pnl(sign, entry_price, worst_price, units, quote_is_account)
            )
            if reason >= 0:
                pnl = position_pnl(sign, entry_price, exit_price, units, quote_is_account) - cost
                realized += pnl
                equity = realized
                if record:
                    trade = trades_out[trades]
                    trade.entry_bar = entry_bar
                    trade.exit_bar = j
                    trade.side = side
                    trade.entry_price = entry_price
                    trade.exit_price = exit_price
                    trade.lots = lots
                    trade.pnl = pnl
                    trade.exit_reason = reason
                side = 0
                trades += 1
                delta = pnl - mean
                mean += delta / trades
                m2 += delta * (pnl - mean)
                if pnl > 0:
                    wins += 1
                    gross_win += pnl
                elif pnl < 0:
                    gross_loss -= pnl
                if month[j] != current_month:
                    if current_month >= 0:
                        months += 1
                        good_months += 1 if month_pnl > 0 else 0
                    current_month = month[j]
                    month_pnl = 0.0
                month_pnl += pnl
            else:
                c = close[j]
                if trail_dist > 0:
                    if side > 0:
                        best = max(best, c)
                        tightened = max(stop, best - trail_dist)
                    else:
                        best = min(best, c)
                        tightened = min(stop, best + trail_dist)
                    trailed |= tightened != stop
                    stop = tightened
                equity = (
                    realized
                    - cost
                    + position_pnl(sign, entry_price, c - sign * half, units, quote_is_account)
                )
        else:
            equity = realized
        worst = min(worst, equity)
        if peak - worst > max_dd * peak:
            max_dd = (peak - worst) / peak
        peak = max(peak, equity)
        day_min = min(day_min, worst)
        if record:
            equity_out[j] = equity
            equity_low_out[j] = worst
        s = signal[j]
        if s != 0:
            if side == 0:
                a = atr[j]
                if j + 1 < n and a > 0 and realized > 0:
                    pending = s
                    stop_dist = stop_atr * a
                    take_dist = take_atr * a
                    trail_dist = trail_atr * a
            elif s != side:
                exit_next = True
    daily_end[day] = equity
    daily_min[day] = day_min
    if current_month >= 0:
        months += 1
        good_months += 1 if month_pnl > 0 else 0
    fill_metrics(
        metrics, daily_start, daily_min, daily_end, initial_equity, realized, max_dd, trades,
        wins, gross_win, gross_loss, mean, m2, months, good_months, PERIODS_PER_YEAR,
    )  # fmt: skip
    return trades


@njit(cache=True, parallel=True, error_model="numpy")
def simulate_batch(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    atr: np.ndarray,
    spread: np.ndarray,
    day_index: np.ndarray,
    month: np.ndarray,
    signals: np.ndarray,
    rules: np.ndarray,
    risk_fraction: float,
    initial_equity: float,
    contract_size: float,
    quote_is_account: bool,
    commission_per_lot: float,
    default_spread: float,
    lot_step: float,
    min_lot: float,
    daily_start: np.ndarray,
    daily_min: np.ndarray,
    daily_end: np.ndarray,
    daily_trades: np.ndarray,
    metrics: np.ndarray,
) -> None:
    """`simulate` for each row of `signals` and `rules`, candidates spread over threads."""
    no_bars = np.empty(0)
    no_trades = np.empty(0, dtype=TRADE_RECORD)
    for c in prange(signals.shape[0]):
        simulate(
            open_, high, low, close, atr, spread, day_index, month, signals[c],
            rules[c, 0], rules[c, 1], int(rules[c, 2]), rules[c, 3], risk_fraction,
            initial_equity, contract_size, quote_is_account, commission_per_lot,
            default_spread, lot_step, min_lot, daily_start[c], daily_min[c], daily_end[c],
            daily_trades[c], metrics[c], False, no_bars, no_bars, no_trades,
        )  # fmt: skip
