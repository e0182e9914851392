"""One number per backtest for an optimizer searching for challenge-passing strategies."""

from __future__ import annotations

import math

from forex_assets.prop_firms.challenge import RuleReport
from forex_assets.value_checks import is_whole

#: Score tiers: a pass beats any non-pass and a non-pass any breach, whatever the Sharpe,
#: trade count, or progress, because every other term is bounded well inside the gap.
PASS_SCORE = 1000.0
BREACH_SCORE = -1000.0
TIMING_WEIGHT = 100.0  # the most an early pass gains, or an early breach costs
PROGRESS_WEIGHT = 50.0  # not passed: reward for the share of the target reached
SHARPE_WEIGHT = 10.0  # Sharpe enters as SHARPE_WEIGHT * tanh(sharpe / SHARPE_WEIGHT)
TRADES_WEIGHT = 10.0  # the penalty for no trades at all, falling linearly to 0 at min_trades


def prop_firm_score(report: RuleReport, sharpe: float, trades: int, min_trades: int = 20) -> float:
    """Fitness of one backtest for an optimizer searching for challenge-passing strategies.

    Higher is better and the result is always finite. Three tiers, so the optimizer first
    stops breaching, then reaches the target, then improves quality:

    * breached: `BREACH_SCORE` minus up to `TIMING_WEIGHT` the earlier in the period the
      breach came (a strategy that survives longer is closer to viable);
    * passed: `PASS_SCORE` plus up to `TIMING_WEIGHT` the fewer days the pass needed;
    * neither: up to `PROGRESS_WEIGHT` for the share of the target earned.

    Each adds the Sharpe ratio squashed by tanh into +-`SHARPE_WEIGHT` (NaN counts as the
    worst Sharpe: a strategy whose Sharpe is undefined has shown no edge) and subtracts up
    to `TRADES_WEIGHT` for fewer than `min_trades` trades, which make the Sharpe noise.
    The score rises with Sharpe, trades (up to `min_trades`), later breaches and earlier
    passes.
    """
    if not is_whole(trades) or trades < 0:
        raise ValueError(f"trades={trades!r} must be a whole number >= 0.")
    if not is_whole(min_trades) or min_trades < 0:
        raise ValueError(f"min_trades={min_trades!r} must be a whole number >= 0.")
    elapsed = report.days_checked / report.days_total
    if report.breach is not None:
        score = BREACH_SCORE - TIMING_WEIGHT * (1 - elapsed)
    elif report.passed:
        score = PASS_SCORE + TIMING_WEIGHT * (1 - elapsed)
    else:
        target = report.rules.profit_target
        progress = min(max(report.final_return / target, 0.0), 1.0) if target else 0.0
        score = PROGRESS_WEIGHT * progress
    squashed = -1.0 if math.isnan(sharpe) else math.tanh(sharpe / SHARPE_WEIGHT)
    shortfall = max(min_trades - int(trades), 0) / min_trades if min_trades else 0.0
    return score + SHARPE_WEIGHT * squashed - TRADES_WEIGHT * shortfall
