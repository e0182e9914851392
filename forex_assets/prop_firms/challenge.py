"""The prop-firm checker: replay daily equity against a firm's rules, as the firm would.

A prop firm funds a trader who passes a challenge: reach a profit target without breaking
loss limits, trading on enough days. `PropFirmRules` holds one firm's terms; `check_rules`
replays a backtest's per-day equity (start, intraday worst, end, trades opened) against
them, the way the firm would, and says whether and when the challenge was passed or lost:

* **Daily loss.** ``(start - worst) / start`` must not exceed `daily_loss_limit`; the worst
  is the day's lowest intraday equity, since firms watch open positions, not closed trades.
* **Total loss.** ``(reference - worst) / initial`` must not exceed `max_total_loss`: the
  limit is a share of the initial balance, the reference is the initial balance (static
  drawdown) or, with `trailing_drawdown`, the highest end-of-day equity before that day
  (never below the initial balance), so the floor trails profits by a fixed amount.
* **Trades per day.** More than `max_trades_per_day` trades opened in a day is a breach.
* **Target.** The challenge is passed on the first day whose end equity is at least
  ``initial x (1 + profit_target)`` with `min_trading_days` days that opened a trade so
  far, that day included. A target reached before enough trading days does not pass
  early: the pass comes on the later day the days are met, and only if that day also ends
  at or above the target, because the firm checks the target at the time it can pass.
  With ``profit_target == 0`` (a funded account) there is nothing to pass early: every day
  is checked and the account passes when nothing was breached and enough days traded.

Equality is allowed: losing exactly the limit is not a breach and ending exactly at the
target reaches it, to within `TOLERANCE` (0.1 has no exact binary form, so 110,000 is not
quite ``100,000 x 1.1`` in floating point, yet a firm counts it as 10%). Evaluation stops
at the first breach or the pass, as the firm's does: a breach on the day the target is
reached fails the challenge, a loss after the pass does not count. When one day breaks
several rules, the breach named is the first in `BREACH_RULES` order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forex_assets.prop_firms.rules import TOLERANCE, PropFirmRules
from forex_assets.value_checks import is_finite_number

BREACH_RULES = ("daily_loss_limit", "max_total_loss", "max_trades_per_day")


@dataclass(frozen=True)
class RuleBreach:
    """The rule broken, the FX trading day it broke on, what was measured and the limit."""

    rule: str
    day: int
    value: float
    limit: float


@dataclass(frozen=True)
class RuleReport:
    """What the firm would say about one equity path, over the days it evaluated.

    `trading_days`, `final_return`, `worst_daily_loss` and `max_total_drawdown` cover the
    evaluated days only: up to the breach or the pass, or all `days_total` days.
    `max_total_drawdown` is measured as the total-loss rule measures it.
    """

    passed: bool
    breach: RuleBreach | None
    target_reached_day: int | None
    trading_days: int
    final_return: float
    worst_daily_loss: float
    max_total_drawdown: float
    days_checked: int
    days_total: int
    rules: PropFirmRules

    def describe(self) -> str:
        """One line for logs and dashboards."""
        rules = self.rules
        if self.breach is not None:
            b = self.breach
            where = f"failed: {b.rule} on day {b.day}:"
            if b.rule == "daily_loss_limit":
                return f"{where} lost {b.value:.1%} of day-start equity (limit {b.limit:.1%})"
            if b.rule == "max_total_loss":
                lost = "fell below the high-water mark by" if rules.trailing_drawdown else "lost"
                return f"{where} {lost} {b.value:.1%} of the initial balance (limit {b.limit:.1%})"
            return f"{where} opened {b.value:.0f} trades (limit {b.limit:.0f})"
        if self.passed:
            if self.target_reached_day is not None:
                return f"passed on day {self.target_reached_day}"
            return f"passed: no rule breached in {self.days_checked} days"
        short_of_days = self.trading_days < rules.min_trading_days
        if rules.profit_target and (not short_of_days or self.final_return < rules.profit_target):
            return (
                f"not passed: target not reached ({self.final_return:+.1%} of "
                f"{rules.profit_target * 100:g}%)"
            )
        return f"not passed: {self.trading_days} trading days of {rules.min_trading_days}"


def _day_arrays(
    days: np.ndarray,
    start_equity: np.ndarray,
    min_equity: np.ndarray,
    end_equity: np.ndarray,
    trades_opened: np.ndarray,
    initial_equity: float,
) -> tuple[np.ndarray, ...]:
    """The inputs as checked numpy arrays; anything the rules cannot be applied to raises."""
    if not is_finite_number(initial_equity):
        raise ValueError(f"initial_equity={initial_equity!r} must be a finite number.")
    if initial_equity <= 0:
        raise ValueError(
            f"initial_equity={initial_equity!r} must be positive: limits and the target are "
            "fractions of it."
        )
    arrays = {
        "days": np.asarray(days),
        "start_equity": np.asarray(start_equity, dtype=np.float64),
        "min_equity": np.asarray(min_equity, dtype=np.float64),
        "end_equity": np.asarray(end_equity, dtype=np.float64),
        "trades_opened": np.asarray(trades_opened),
    }
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) != 1 or arrays["days"].ndim != 1:
        raise ValueError(f"per-day inputs must be 1-D arrays of one length, got shapes {shapes}.")
    if arrays["days"].size == 0:
        raise ValueError("no days to check: pass at least one FX trading day of equity.")
    for name in ("days", "trades_opened"):
        if not np.issubdtype(arrays[name].dtype, np.integer):
            raise ValueError(f"{name} must be integers, got dtype {arrays[name].dtype}.")
    if np.any(np.diff(arrays["days"]) <= 0):
        raise ValueError(
            "days must be strictly increasing FX trading day ids, one row per day; sort "
            "them and aggregate repeated days."
        )
    for name in ("start_equity", "min_equity", "end_equity"):
        if not np.all(np.isfinite(arrays[name])):
            raise ValueError(f"{name} has NaN or infinite values; equity must be finite.")
    if np.any(arrays["trades_opened"] < 0):
        raise ValueError("trades_opened must be >= 0 on every day.")
    return tuple(arrays.values())


def _first(mask: np.ndarray) -> int:
    """Index of the first True, or the length when there is none."""
    return int(np.argmax(mask)) if mask.any() else mask.size


def check_rules(
    days: np.ndarray,
    start_equity: np.ndarray,
    min_equity: np.ndarray,
    end_equity: np.ndarray,
    trades_opened: np.ndarray,
    rules: PropFirmRules,
    initial_equity: float,
) -> RuleReport:
    """Replay per-day equity against `rules` (semantics in the module docstring).

    One entry per FX trading day, in order: `days` are the day ids (int64), `min_equity` the
    day's lowest intraday equity, `trades_opened` the trades opened that day. The worst
    equity of a day is taken as at most its start and end, which bound it by definition.
    """
    days, start, low, end, trades = _day_arrays(
        days, start_equity, min_equity, end_equity, trades_opened, initial_equity
    )
    worst = np.minimum(low, np.minimum(start, end))
    # A day that starts with no equity left (a blown account, which an optimizer's worst
    # candidates reach) has lost everything: an infinite daily loss, always a breach.
    with np.errstate(divide="ignore", invalid="ignore"):
        daily_loss = np.where(start > 0, (start - worst) / start, np.inf)
    gain = end / initial_equity - 1
    if rules.trailing_drawdown:
        reference = np.maximum.accumulate(np.concatenate(([initial_equity], end[:-1])))
    else:
        reference = np.full(days.size, float(initial_equity))
    total_loss = (reference - worst) / initial_equity
    too_many = (
        trades > rules.max_trades_per_day
        if rules.max_trades_per_day is not None
        else np.zeros(days.size, dtype=bool)
    )
    breached = np.column_stack(
        [
            daily_loss > rules.daily_loss_limit + TOLERANCE,
            total_loss > rules.max_total_loss + TOLERANCE,
            too_many,
        ]
    )
    breach_at = _first(breached.any(axis=1))
    trading_so_far = np.cumsum(trades > 0)
    enough_days = trading_so_far >= rules.min_trading_days
    if rules.profit_target > 0:
        pass_at = _first((gain >= rules.profit_target - TOLERANCE) & enough_days)
    else:
        pass_at = days.size
    breach = None
    if breach_at < days.size and breach_at <= pass_at:
        rule = int(np.argmax(breached[breach_at]))
        values = (daily_loss[breach_at], total_loss[breach_at], trades[breach_at])
        limits = (rules.daily_loss_limit, rules.max_total_loss, rules.max_trades_per_day)
        breach = RuleBreach(
            BREACH_RULES[rule], int(days[breach_at]), float(values[rule]), float(limits[rule])
        )
        last = breach_at
    else:
        last = min(pass_at, days.size - 1)
    target_reached = breach is None and pass_at < days.size
    checked = slice(0, last + 1)
    return RuleReport(
        passed=target_reached or (breach is None and not rules.profit_target and enough_days[-1]),
        breach=breach,
        target_reached_day=int(days[pass_at]) if target_reached else None,
        trading_days=int(trading_so_far[last]),
        final_return=float(gain[last]),
        worst_daily_loss=float(daily_loss[checked].max()),
        max_total_drawdown=float(max(total_loss[checked].max(), 0.0)),
        days_checked=last + 1,
        days_total=int(days.size),
        rules=rules,
    )


def check_rules_batch(
    days: np.ndarray,
    start_equity: np.ndarray,
    min_equity: np.ndarray,
    end_equity: np.ndarray,
    trades_opened: np.ndarray,
    rules: PropFirmRules,
    initial_equity: float,
) -> list[RuleReport]:
    """`check_rules` for n equity paths over the same days: 2-D inputs of shape (n, days)."""
    matrices = {
        "start_equity": np.asarray(start_equity),
        "min_equity": np.asarray(min_equity),
        "end_equity": np.asarray(end_equity),
        "trades_opened": np.asarray(trades_opened),
    }
    shapes = {name: m.shape for name, m in matrices.items()}
    paths = shapes["start_equity"][0] if shapes["start_equity"] else 0
    if any(shape != (paths, len(days)) for shape in shapes.values()):
        raise ValueError(
            f"batch inputs must all have shape (paths, {len(days)} days), got {shapes}."
        )
    return [
        check_rules(days, *(m[i] for m in matrices.values()), rules, initial_equity)
        for i in range(paths)
    ]
