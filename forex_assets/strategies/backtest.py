"""Bar-by-bar backtest of one instrument: a numba kernel for one signal or thousands.

Strategy search evaluates many candidate rule sets on the same bars, so the simulation is
one serial numba loop (`_simulate`) that `backtest` runs once, with trade and equity
records, and `backtest_batch` runs per candidate in parallel, keeping only the metrics and
the per-day equity that prop-firm rules need.

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
`equity`) and the number of trades opened on it. Metrics (see `METRIC_NAMES`), named as in
`forex_assets.metrics.trading.TradingMetrics`:

* net_profit: final equity / initial - 1.
* sharpe, sortino: mean daily return / its std (ddof=1), resp. / sqrt(mean(min(r, 0)^2)),
  times sqrt(252), from the days in the data (return = end / start - 1); NaN with fewer
  than two days or a zero deviation.
* max_drawdown: largest (peak - `equity_low[j]`) / peak, the peak being the highest
  `equity` before bar j (the initial equity included).
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
from dataclasses import dataclass, field, fields
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import polars as pl
from numba import njit, prange

from forex_assets.features.indicator_set import PriceInputs
from forex_assets.market.contract import (
    Contract,
    lots_rounded_down,
    position_pnl,
    value_per_price_unit,
)
from forex_assets.market.fx_calendar import DEFAULT_CALENDAR, FxCalendar

EXIT_REASONS = ("stop", "take", "trail", "max_hold", "opposite", "end")
_STOP, _TAKE, _TRAIL, _MAX_HOLD, _OPPOSITE, _END = range(len(EXIT_REASONS))

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
(_NET, _SHARPE, _SORTINO, _MAX_DD, _DAILY_DD, _PF, _WIN, _EXPECT, _SQN, _TRADES, _MONTHLY) = range(
    len(METRIC_NAMES)
)
TRADE_COLUMNS = ("entry_bar", "exit_bar", "side", "entry_price", "exit_price", "lots", "pnl")
_REASON = len(TRADE_COLUMNS)  # the trade buffer's last column holds the exit reason code
RULE_COLUMNS = ("stop_atr", "take_atr", "max_hold_bars", "trail_atr")
PERIODS_PER_YEAR = 252


class BacktestInputError(ValueError):
    """Bars, signals, rules or a contract the kernel cannot run; the message says which."""


def _as_array(name: str, values: object, dtype: type) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=dtype)
    if array.ndim != 1:
        raise BacktestInputError(f"Market.{name} has shape {array.shape}; pass a 1-D array.")
    return array


@dataclass(frozen=True)
class Market:
    """One instrument's bars as contiguous arrays, in time order (see the module docstring).

    `spread` is in price units (NaN: the contract's default); `day` is the FX trading day of
    each bar (days since 1970-01-01, as `FxCalendar.trading_day` returns), `month` the month index
    ``year x 12 + month - 1`` of that day. `day_index` numbers the distinct days 0, 1, ...
    and `days` lists them; both are derived, so every backtest on the market reuses them.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    atr: np.ndarray
    spread: np.ndarray
    day: np.ndarray
    month: np.ndarray
    day_index: np.ndarray = field(init=False, repr=False)
    days: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("open", "high", "low", "close", "atr", "spread"):
            object.__setattr__(self, name, _as_array(name, getattr(self, name), np.float64))
        for name in ("day", "month"):
            object.__setattr__(self, name, _as_array(name, getattr(self, name), np.int64))
        lengths = {f.name: getattr(self, f.name).size for f in fields(self) if f.init}
        if len(set(lengths.values())) != 1 or self.close.size == 0:
            raise BacktestInputError(
                f"Market arrays have lengths {lengths}; every array needs one entry per bar, "
                "and there must be at least one bar."
            )
        prices = np.stack([self.open, self.high, self.low, self.close])
        if not np.isfinite(prices).all():
            raise BacktestInputError(
                f"Market prices have {int((~np.isfinite(prices)).sum())} NaN or infinite "
                "values; drop or repair those bars first (a NaN price makes every fill NaN)."
            )
        broken = (self.high < np.maximum(self.open, self.close)) | (
            self.low > np.minimum(self.open, self.close)
        )
        if broken.any():
            bar = int(np.argmax(broken))
            raise BacktestInputError(
                f"bar {bar} has open={self.open[bar]}, high={self.high[bar]}, low="
                f"{self.low[bar]}, close={self.close[bar]}: high and low must bound open and "
                "close, or stops and gaps cannot be decided. Fix the bars."
            )
        if (self.spread < 0).any():
            bar = int(np.argmax(self.spread < 0))
            raise BacktestInputError(
                f"spread[{bar}]={self.spread[bar]} is negative; a spread is ask - bid in "
                "price units (NaN where unknown)."
            )
        for name in ("day", "month"):
            steps = np.diff(getattr(self, name))
            if (steps < 0).any():
                raise BacktestInputError(
                    f"Market.{name} decreases at bar {int(np.argmax(steps < 0)) + 1}; bars must "
                    "be in time order."
                )
        new_day = np.concatenate(([True], self.day[1:] != self.day[:-1]))
        object.__setattr__(self, "day_index", np.cumsum(new_day) - 1)
        object.__setattr__(self, "days", self.day[new_day])

    def __len__(self) -> int:
        return self.close.size

    @classmethod
    def from_bars(
        cls, bars: pl.DataFrame, calendar: FxCalendar = DEFAULT_CALENDAR, atr_period: int = 14
    ) -> Market:
        """Arrays of `bars` (time in UTC, open, high, low, close, nullable spread) with the
        indicator registry's ATR of `atr_period` bars (NaN during its warm-up); days are
        `calendar`'s trading days, so daily limits cut where the bars' daily close does."""
        missing = {"time", "open", "high", "low", "close", "spread"} - set(bars.columns)
        if missing:
            raise BacktestInputError(
                f"bars lack columns {sorted(missing)}; pass bars in the canonical schema "
                "(time, open, high, low, close, spread)."
            )
        if isinstance(atr_period, bool) or not isinstance(atr_period, int) or atr_period < 1:
            raise BacktestInputError(f"atr_period={atr_period!r} must be a whole number >= 1.")
        if not bars.get_column("time").is_sorted():
            raise BacktestInputError("bars are not sorted by time; sort them by `time` first.")
        prices = PriceInputs.from_bars(bars)
        day = calendar.trading_day(prices.time_us)
        month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + 1970 * 12
        return cls(
            open=prices.open,
            high=prices.high,
            low=prices.low,
            close=prices.close,
            atr=prices.atr(atr_period),
            spread=bars.get_column("spread").cast(pl.Float64).fill_null(np.nan).to_numpy(),
            day=day,
            month=month,
        )


def _rule_problem(rules: np.ndarray) -> tuple[int, int, str] | None:
    """(row, column, why) of the first invalid entry of an (n, 4) `RULE_COLUMNS` array."""
    finite = np.isfinite(rules)
    hold = rules[:, 2]
    bad = (
        (~(finite[:, 0] & (rules[:, 0] > 0)), "must be a positive, finite multiple of the ATR"),
        (~(finite[:, 1] & (rules[:, 1] > 0)), "must be a positive, finite multiple of the ATR"),
        (~(finite[:, 2] & (hold >= 1) & (hold == np.floor(hold))), "must be a whole number >= 1"),
        (~(finite[:, 3] & (rules[:, 3] >= 0)), "must be >= 0 and finite (0: no trailing stop)"),
    )
    for column, (mask, why) in enumerate(bad):
        if mask.any():
            return int(np.argmax(mask)), column, why
    return None


def _is_number(value: object) -> bool:
    """A real number that is not a bool (True is an int to Python, never a price or a size)."""
    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def _check_account(risk_fraction: float, initial_equity: float, where: str) -> None:
    if not (_is_number(risk_fraction) and 0 < risk_fraction <= 0.1):
        raise BacktestInputError(
            f"{where}risk_fraction={risk_fraction!r} must be in (0, 0.1]: it is the share of "
            "equity lost when a stop is hit, e.g. 0.01 for 1%."
        )
    if not (_is_number(initial_equity) and math.isfinite(initial_equity)):
        raise BacktestInputError(f"{where}initial_equity={initial_equity!r} must be finite.")
    if initial_equity <= 0:
        raise BacktestInputError(f"{where}initial_equity={initial_equity!r} must be positive.")


@dataclass(frozen=True)
class TradeRules:
    """Exit rules and sizing of one strategy; ATR multiples use the signal bar's ATR."""

    stop_atr: float
    take_atr: float
    max_hold_bars: int
    trail_atr: float = 0.0
    risk_fraction: float = 0.01
    initial_equity: float = 100_000.0

    def __post_init__(self) -> None:
        for name in RULE_COLUMNS:
            value = getattr(self, name)
            if not _is_number(value):
                raise BacktestInputError(f"TradeRules.{name}={value!r} must be a number.")
        if not isinstance(self.max_hold_bars, Integral):
            raise BacktestInputError(
                f"TradeRules.max_hold_bars={self.max_hold_bars!r} must be an int (bars)."
            )
        problem = _rule_problem(self.as_row()[None, :])
        if problem is not None:
            name = RULE_COLUMNS[problem[1]]
            raise BacktestInputError(f"TradeRules.{name}={getattr(self, name)!r} {problem[2]}.")
        _check_account(self.risk_fraction, self.initial_equity, "TradeRules.")

    def as_row(self) -> np.ndarray:
        """The exit rules as one row of `backtest_batch`'s `rules` array."""
        return np.array([getattr(self, name) for name in RULE_COLUMNS], dtype=np.float64)


@dataclass(frozen=True)
class BacktestResult:
    """Trades (`TRADE_COLUMNS` + exit_reason), per-bar equity, per-day summary, metrics."""

    trades: pl.DataFrame
    equity: np.ndarray
    equity_low: np.ndarray
    daily: pl.DataFrame
    metrics: dict[str, float]


@dataclass(frozen=True)
class BatchResult:
    """Row c of every array belongs to candidate c: `metrics` columns are `METRIC_NAMES`,
    `daily_*` columns follow `days`."""

    METRIC_NAMES: ClassVar[tuple[str, ...]] = METRIC_NAMES
    metrics: np.ndarray
    days: np.ndarray
    daily_start: np.ndarray
    daily_min: np.ndarray
    daily_end: np.ndarray
    daily_trades: np.ndarray


# error_model="numpy": a zero divisor (a day that starts at zero equity after ruin) gives inf
# or NaN, as in numpy, instead of raising mid-run, and no division pays for a zero check.
@njit(cache=True, nogil=True, error_model="numpy")
def _simulate(
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
    (one row per trade: `TRADE_COLUMNS`, then the exit reason code; it needs a row per
    possible entry, i.e. per nonzero signal). Returns the number of trades. Everything the
    metrics need is kept as running sums, so a batch candidate costs no per-bar memory.
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
                reason = _OPPOSITE
                exit_next = False
            else:
                # Exit-side extremes: a long sells at the bid, a short buys at the ask.
                worst_price = low[j] - half if side > 0 else high[j] + half
                best_price = high[j] - half if side > 0 else low[j] + half
                if sign * (worst_price - stop) <= 0:
                    exit_price = worst_price = (
                        min(exit_open, stop) if side > 0 else max(exit_open, stop)
                    )
                    reason = _TRAIL if trailed else _STOP
                elif sign * (best_price - take) >= 0:
                    exit_price = max(exit_open, take) if side > 0 else min(exit_open, take)
                    reason = _TAKE
                held += 1
                if reason < 0 and (held >= max_hold or j == n - 1):
                    exit_price = close[j] - sign * half
                    reason = _MAX_HOLD if held >= max_hold else _END
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
                    trades_out[trades, 0] = entry_bar
                    trades_out[trades, 1] = j
                    trades_out[trades, 2] = side
                    trades_out[trades, 3] = entry_price
                    trades_out[trades, 4] = exit_price
                    trades_out[trades, 5] = lots
                    trades_out[trades, 6] = pnl
                    trades_out[trades, _REASON] = reason
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
    _fill_metrics(
        metrics, daily_start, daily_min, daily_end, initial_equity, realized, max_dd, trades,
        wins, gross_win, gross_loss, mean, m2, months, good_months,
    )  # fmt: skip
    return trades


@njit(cache=True, nogil=True, error_model="numpy")
def _fill_metrics(
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
) -> None:
    """`METRIC_NAMES` from the day arrays and the running trade sums (see module docstring)."""
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
    scale = math.sqrt(PERIODS_PER_YEAR)
    metrics[_NET] = final_equity / initial_equity - 1.0
    metrics[_SHARPE] = mean_day / std_day * scale if std_day > 0 else np.nan
    metrics[_SORTINO] = mean_day / downside * scale if n_days > 1 and downside > 0 else np.nan
    metrics[_MAX_DD] = max_dd
    metrics[_DAILY_DD] = worst_day
    if gross_loss > 0:
        metrics[_PF] = gross_win / gross_loss
    else:
        metrics[_PF] = np.inf if gross_win > 0 else np.nan
    metrics[_WIN] = wins / trades if trades else np.nan
    metrics[_EXPECT] = mean / initial_equity if trades else np.nan
    std_trade = math.sqrt(m2 / (trades - 1)) if trades > 1 else 0.0
    metrics[_SQN] = math.sqrt(trades) * mean / std_trade if std_trade > 0 else np.nan
    metrics[_TRADES] = trades
    metrics[_MONTHLY] = good_months / months if months else np.nan


@njit(cache=True, parallel=True, error_model="numpy")
def _simulate_batch(
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
    """`_simulate` for each row of `signals` and `rules`, candidates spread over threads."""
    no_bars = np.empty(0)
    no_trades = np.empty((0, _REASON + 1))
    for c in prange(signals.shape[0]):
        _simulate(
            open_, high, low, close, atr, spread, day_index, month, signals[c],
            rules[c, 0], rules[c, 1], int(rules[c, 2]), rules[c, 3], risk_fraction,
            initial_equity, contract_size, quote_is_account, commission_per_lot,
            default_spread, lot_step, min_lot, daily_start[c], daily_min[c], daily_end[c],
            daily_trades[c], metrics[c], False, no_bars, no_bars, no_trades,
        )  # fmt: skip


def _checked_signals(signal: object, bars: int, name: str, ndim: int) -> np.ndarray:
    """`signal` as contiguous int8 after checking its shape and that it holds only -1, 0, 1."""
    array = np.asarray(signal)
    if array.ndim != ndim or array.shape[-1] != bars:
        want = f"({bars},)" if ndim == 1 else f"(candidates, {bars})"
        raise BacktestInputError(
            f"{name} has shape {array.shape}; pass shape {want}, one entry per market bar."
        )
    if array.dtype.kind in "iub":
        # Integer signals: two reductions, no temporaries (batches hold millions of entries).
        valid = array.size == 0 or (array.min() >= -1 and array.max() <= 1)
    elif array.dtype.kind == "f":
        valid = bool(((array == -1) | (array == 0) | (array == 1)).all())
    else:
        valid = False
    if not valid:
        flat = array.ravel()
        bad = int(np.argmax(~np.isin(flat, (-1, 0, 1)))) if array.dtype.kind in "iubf" else 0
        value = flat[bad].item()
        raise BacktestInputError(
            f"{name} has dtype {array.dtype} and holds {value!r} at flat position {bad}; "
            "signals must be -1 (short), 0 (no signal) or +1 (long)."
        )
    return np.ascontiguousarray(array, dtype=np.int8)


def _market_args(market: Market) -> tuple[np.ndarray, ...]:
    """The bar arrays in `_simulate`'s parameter order."""
    return (
        market.open,
        market.high,
        market.low,
        market.close,
        market.atr,
        market.spread,
        market.day_index,
        market.month,
    )


def _contract_args(contract: Contract) -> tuple[float | bool, ...]:
    """The contract in `_simulate`'s parameter order, the default spread in price units."""
    return (
        float(contract.contract_size),
        bool(contract.quote_is_account),
        float(contract.commission_per_lot),
        contract.default_spread,
        float(contract.lot_step),
        float(contract.min_lot),
    )


def backtest(
    market: Market, signal: np.ndarray, rules: TradeRules, contract: Contract
) -> BacktestResult:
    """Trades, equity, daily summary and metrics of `signal` on `market` (module docstring)."""
    checked = _checked_signals(signal, len(market), "signal", 1)
    days = market.days.size
    daily = [np.empty(days) for _ in range(3)]
    daily_trades = np.empty(days, dtype=np.int64)
    metrics = np.empty(len(METRIC_NAMES))
    equity = np.empty(len(market))
    equity_low = np.empty(len(market))
    buffer = np.empty((np.count_nonzero(checked), _REASON + 1))
    # A hold longer than the data never binds; capping it keeps it an int64 in the kernel.
    max_hold = min(int(rules.max_hold_bars), len(market))
    count = _simulate(
        *_market_args(market), checked, float(rules.stop_atr), float(rules.take_atr),
        max_hold, float(rules.trail_atr), float(rules.risk_fraction),
        float(rules.initial_equity), *_contract_args(contract), *daily, daily_trades, metrics,
        True, equity, equity_low, buffer,
    )  # fmt: skip
    rows = buffer[:count]
    trades = pl.DataFrame(
        {
            "entry_bar": rows[:, 0].astype(np.int64),
            "exit_bar": rows[:, 1].astype(np.int64),
            "side": rows[:, 2].astype(np.int8),
            **{name: rows[:, k] for k, name in enumerate(TRADE_COLUMNS) if k >= 3},
            "exit_reason": pl.Series(EXIT_REASONS, dtype=pl.Enum(EXIT_REASONS)).gather(
                rows[:, _REASON].astype(np.int64)
            ),
        }
    )
    start, low, end = daily
    frame = pl.DataFrame(
        {
            "day": market.days,
            "start_equity": start,
            "min_equity": low,
            "end_equity": end,
            "trades": daily_trades,
        }
    )
    return BacktestResult(
        trades=trades,
        equity=equity,
        equity_low=equity_low,
        daily=frame,
        metrics=dict(zip(METRIC_NAMES, metrics.tolist(), strict=True)),
    )


def backtest_batch(
    market: Market,
    signals: np.ndarray,
    rules: np.ndarray,
    contract: Contract,
    risk_fraction: float = 0.01,
    initial_equity: float = 100_000.0,
) -> BatchResult:
    """Metrics and daily equity of many candidates at once, one per row of `signals`.

    `rules` has one row per candidate, columns `RULE_COLUMNS`. Candidates run in parallel on
    numba's threads (`numba.set_num_threads` bounds them); each matches `backtest` with the
    same inputs exactly, since both run the same kernel.
    """
    checked = _checked_signals(signals, len(market), "signals", 2)
    table = np.array(rules, dtype=np.float64)  # a copy: the max hold is capped below
    if table.shape != (checked.shape[0], len(RULE_COLUMNS)):
        raise BacktestInputError(
            f"rules has shape {table.shape} for {checked.shape[0]} signal rows; pass shape "
            f"({checked.shape[0]}, {len(RULE_COLUMNS)}), columns {RULE_COLUMNS}."
        )
    problem = _rule_problem(table)
    if problem is not None:
        row, column, why = problem
        value = table[row, column].item()
        raise BacktestInputError(
            f"rules[{row}, {column}] ({RULE_COLUMNS[column]}) = {value!r} {why}."
        )
    _check_account(risk_fraction, initial_equity, "")
    np.minimum(table[:, 2], len(market), out=table[:, 2])
    shape = (checked.shape[0], market.days.size)
    daily = [np.empty(shape) for _ in range(3)]
    daily_trades = np.empty(shape, dtype=np.int64)
    metrics = np.empty((checked.shape[0], len(METRIC_NAMES)))
    _simulate_batch(
        *_market_args(market), checked, table, float(risk_fraction), float(initial_equity),
        *_contract_args(contract), *daily, daily_trades, metrics,
    )  # fmt: skip
    return BatchResult(metrics, market.days, *daily, daily_trades)
