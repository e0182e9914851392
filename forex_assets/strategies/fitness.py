"""Strategy fitness under prop-firm rules, and month-by-month validation on held-out data.

The fitness of a gene vector is the prop-firm score of its backtest on the training
period: a breach is heavily penalized, reaching the target rewarded, and Sharpe and
trade count separate the rest (`prop_firm.prop_firm_score`). Candidates are then replayed
on held-out months, each month a fresh challenge from the same starting balance, which
is how a trader would buy one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from forex_assets.market.contract import Contract
from forex_assets.metrics.performance import METRIC_NAMES
from forex_assets.prop_firms.challenge import RuleReport, check_rules, check_rules_batch
from forex_assets.prop_firms.rules import PropFirmRules
from forex_assets.strategies.backtest.market import Market
from forex_assets.strategies.backtest.rules import TradeRules
from forex_assets.strategies.backtest.run import backtest, backtest_batch
from forex_assets.strategies.challenge_score import prop_firm_score
from forex_assets.strategies.genes import (
    RuleInputs,
    check_population,
    from_unit,
    signals,
    trade_rules,
)

SHARPE = METRIC_NAMES.index("sharpe")
TRADES = METRIC_NAMES.index("trades")


def sliced(obj, rows: slice):
    """A copy of an arrays-only dataclass (Market, RuleInputs) restricted to `rows`."""
    return type(obj)(**{f.name: getattr(obj, f.name)[rows] for f in fields(obj) if f.init})


@dataclass(frozen=True)
class SearchData:
    """Everything a fitness evaluation reads; picklable, so island workers receive it once
    per epoch instead of recomputing indicators."""

    market: Market
    inputs: RuleInputs
    contract: Contract
    rules: PropFirmRules
    risk_fraction: float = 0.01
    initial_equity: float = 100_000.0
    min_trades: int = 20

    def rows(self, rows: slice) -> SearchData:
        return SearchData(
            sliced(self.market, rows),
            sliced(self.inputs, rows),
            self.contract,
            self.rules,
            self.risk_fraction,
            self.initial_equity,
            self.min_trades,
        )

    def split(self, holdout_share: float) -> tuple[SearchData, SearchData]:
        """(training, held-out) at the first FX day of the last `holdout_share` of bars."""
        if not 0.0 < holdout_share < 1.0:
            raise ValueError(
                f"holdout_share={holdout_share!r} must be in (0, 1): it is the share of the "
                "bars kept for month-by-month validation."
            )
        day = self.market.day
        cut = int(np.searchsorted(day, day[int(len(day) * (1.0 - holdout_share))]))
        if cut == 0 or cut == len(day):
            raise ValueError(
                f"holdout_share={holdout_share} leaves no training or no held-out day in "
                f"{len(day)} bars; use more data or another share."
            )
        return self.rows(slice(0, cut)), self.rows(slice(cut, len(day)))


def evaluate(
    genes: np.ndarray, data: SearchData
) -> tuple[np.ndarray, list[RuleReport], np.ndarray]:
    """(metrics (n, METRIC_NAMES), rule reports, scores) of a population of gene vectors."""
    population = check_population(genes)
    batch = backtest_batch(
        data.market,
        signals(data.inputs, population),
        trade_rules(population),
        data.contract,
        data.risk_fraction,
        data.initial_equity,
    )
    reports = check_rules_batch(
        batch.days,
        batch.daily_start,
        batch.daily_min,
        batch.daily_end,
        batch.daily_trades,
        data.rules,
        data.initial_equity,
    )
    scores = np.array(
        [
            prop_firm_score(r, float(m[SHARPE]), int(m[TRADES]), data.min_trades)
            for r, m in zip(reports, batch.metrics, strict=True)
        ]
    )
    return batch.metrics, reports, scores


def strategy_objective(unit: np.ndarray, data: SearchData) -> np.ndarray:
    """What CMA-ES minimizes: minus the prop-firm score of unit-cube points."""
    return -evaluate(from_unit(np.atleast_2d(unit)), data)[2]


@dataclass(frozen=True)
class MonthResult:
    month: int  # year x 12 + month - 1
    passed: bool
    verdict: str
    net_profit: float
    trades: int


def validate_monthly(genes: np.ndarray, holdout: SearchData) -> list[MonthResult]:
    """Each held-out month as a fresh challenge, starting from the initial balance."""
    gene = check_population(genes)
    trade = TradeRules.from_row(
        trade_rules(gene)[0],
        risk_fraction=holdout.risk_fraction,
        initial_equity=holdout.initial_equity,
    )
    results = []
    month = holdout.market.month
    for value in np.unique(month):
        rows = np.flatnonzero(month == value)
        part = holdout.rows(slice(int(rows[0]), int(rows[-1]) + 1))
        run = backtest(part.market, signals(part.inputs, gene)[0], trade, holdout.contract)
        daily = run.daily
        report = check_rules(
            daily.get_column("day").to_numpy(),
            daily.get_column("start_equity").to_numpy(),
            daily.get_column("min_equity").to_numpy(),
            daily.get_column("end_equity").to_numpy(),
            daily.get_column("trades").to_numpy(),
            holdout.rules,
            holdout.initial_equity,
        )
        results.append(
            MonthResult(
                int(value),
                report.passed,
                report.describe(),
                float(run.metrics["net_profit"]),
                int(run.metrics["trades"]),
            )
        )
    return results
