"""Strategy discovery for one symbol: CMA-ES islands on the training period, then the best
distinct candidates re-scored and validated month by month on the held-out period.

The search runs in the unit cube over the genes (`genes.from_unit`), minimizing minus the
prop-firm score (`fitness.strategy_objective`), with as many islands as the step's
floor runs at once (`StepBudget.floor`); more islands (`islands=`) lease idle cores per epoch. Its archive of the best distinct points it evaluated becomes the
candidate list the portfolio is later chosen from.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forex_assets.compute.step_budget import StepBudget
from forex_assets.metrics.performance import METRIC_NAMES
from forex_assets.strategies.fitness import (
    MonthResult,
    SearchData,
    evaluate,
    strategy_objective,
    validate_monthly,
)
from forex_assets.strategies.genes import DIMENSION, from_unit
from forex_assets.strategies.islands.result import SearchResult
from forex_assets.strategies.islands.search import island_search
from forex_assets.strategies.islands.settings import IslandSettings


@dataclass(frozen=True)
class EvolutionSettings:
    holdout_share: float = 0.25
    islands: int | None = None  # None: as many as the step's floor runs (StepBudget.floor)
    max_generations: int = 40
    migration_interval: int = 10
    seed: int = 1
    time_budget_s: float | None = 600.0
    max_evaluations: int | None = None
    candidates: int = 40


@dataclass(frozen=True)
class EvolvedStrategy:
    rank: int
    genes: np.ndarray
    fitness: float
    metrics: dict[str, float]
    verdict: str
    months: tuple[MonthResult, ...]

    @property
    def months_passed(self) -> int:
        return sum(m.passed for m in self.months)


@dataclass(frozen=True)
class Evolution:
    strategies: tuple[EvolvedStrategy, ...]  # best training fitness first
    search: SearchResult
    training_bars: int
    holdout_bars: int


def evolve(
    data: SearchData, settings: EvolutionSettings, checkpoint_root: Path | None = None
) -> Evolution:
    """Search, re-score the archive on the training period, validate on held-out months.

    The island layout follows the step's floor unless `settings.islands` fixes it;
    each layout logs in its own directory under `checkpoint_root` (`island_search`), so
    runs with other budgets on one home resume their own searches.
    """
    training, holdout = data.split(settings.holdout_share)
    islands = IslandSettings(
        islands=settings.islands or StepBudget.current().floor,
        seed=settings.seed,
        lower=np.zeros(DIMENSION),
        upper=np.ones(DIMENSION),
        migration_interval=settings.migration_interval,
        max_generations=settings.max_generations,
        time_budget_s=settings.time_budget_s,
        max_evaluations=settings.max_evaluations,
    )
    search = island_search(
        functools.partial(strategy_objective, data=training),
        DIMENSION,
        islands,
        checkpoint_root=checkpoint_root,
    )
    points, _ = search.archive(settings.candidates)
    genes = from_unit(points)
    metrics, reports, scores = evaluate(genes, training)
    order = np.argsort(-scores, kind="stable")
    strategies = tuple(
        EvolvedStrategy(
            rank=rank,
            genes=genes[i],
            fitness=float(scores[i]),
            metrics=dict(zip(METRIC_NAMES, map(float, metrics[i]), strict=True)),
            verdict=reports[i].describe(),
            months=tuple(validate_monthly(genes[i], holdout)),
        )
        for rank, i in enumerate(order)
    )
    return Evolution(strategies, search, len(training.market), len(holdout.market))
