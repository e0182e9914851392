"""Discovery end to end: CMA-ES recovers a planted strategy, and evolution is reproducible."""

import dataclasses
import functools
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from forex_assets.market.contract import Contract
from forex_assets.prop_firms.registry import preset
from forex_assets.strategies.backtest.market import Market
from forex_assets.strategies.evolution import EvolutionSettings, evolve
from forex_assets.strategies.fitness import SearchData
from forex_assets.strategies.genes import GENE_NAMES, LOWER, UPPER, RuleInputs, signals
from forex_assets.strategies.islands.search import island_search
from forex_assets.strategies.islands.settings import IslandSettings

SEARCHED = ("rsi_low", "rsi_high")
PLANTED = {"rsi_low": 30.0, "rsi_high": 70.0}


def random_walk(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 6e-4, rows)))
    open_ = np.concatenate(([1.1], close[:-1]))
    wick = np.abs(rng.normal(0.0, 3e-4, (2, rows)))
    time = pl.datetime_range(
        datetime(2024, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "5m", eager=True,
        time_unit="us",
    ).head(rows)  # fmt: skip
    return pl.DataFrame(
        {
            "time": time,
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
            "spread": np.full(rows, 1e-4),
        }
    )


def genes_with(values: dict[str, float]) -> np.ndarray:
    """An RSI-only strategy: every other rule weighs 0, no ADX gate."""
    genes = (LOWER + UPPER) / 2
    for name in GENE_NAMES:
        if name.startswith("weight_"):
            genes[GENE_NAMES.index(name)] = 1.0 if name == "weight_rsi" else 0.0
    genes[GENE_NAMES.index("vote_threshold")] = 0.5
    genes[GENE_NAMES.index("adx_min")] = 0.0
    for name, value in values.items():
        genes[GENE_NAMES.index(name)] = value
    return genes


def signal_mismatch(unit: np.ndarray, inputs: RuleInputs, planted: np.ndarray) -> np.ndarray:
    """Share of bars where a candidate's signal differs from the planted strategy's."""
    columns = [GENE_NAMES.index(n) for n in SEARCHED]
    genes = np.array(
        [
            genes_with(
                dict(zip(SEARCHED, LOWER[columns] + u * (UPPER - LOWER)[columns], strict=True))
            )
            for u in np.clip(unit, 0, 1)
        ]
    )
    return (signals(inputs, genes) != planted).mean(axis=1)


def test_islands_recover_the_planted_thresholds(monkeypatch):
    monkeypatch.setenv("FOREX_ASSETS_STEP_THREADS", "2")
    inputs = RuleInputs.from_bars(random_walk(4000, seed=5))
    planted = signals(inputs, genes_with(PLANTED)[None, :])[0]
    assert planted.any()
    result = island_search(
        functools.partial(signal_mismatch, inputs=inputs, planted=planted),
        len(SEARCHED),
        IslandSettings(
            islands=2,
            seed=3,
            lower=np.zeros(2),
            upper=np.ones(2),
            migration_interval=5,
            max_generations=30,
        ),
    )
    columns = [GENE_NAMES.index(n) for n in SEARCHED]
    found = LOWER[columns] + result.best_x * (UPPER - LOWER)[columns]
    assert result.best_f == 0.0  # every bar's signal reproduced
    assert found == pytest.approx([PLANTED[n] for n in SEARCHED], abs=1.0)


def test_evolution_is_reproducible_and_validated(monkeypatch):
    monkeypatch.setenv("FOREX_ASSETS_STEP_THREADS", "2")
    bars = random_walk(12_000, seed=9)
    data = SearchData(
        Market.from_bars(bars),
        RuleInputs.from_bars(bars),
        Contract.for_symbol("EURUSD"),
        preset("ftmo_challenge"),
    )
    settings = EvolutionSettings(max_generations=4, migration_interval=2, candidates=5, islands=2)
    first, second = evolve(data, settings), evolve(data, settings)
    assert [s.fitness for s in first.strategies] == [s.fitness for s in second.strategies]
    assert [s.fitness for s in first.strategies] == sorted(
        (s.fitness for s in first.strategies), reverse=True
    )
    best = first.strategies[0]
    assert best.months and all(m.verdict for m in best.months)
    assert first.training_bars + first.holdout_bars == len(bars)


def test_island_layouts_of_other_budgets_share_one_checkpoint_root(monkeypatch, tmp_path):
    """`train` and `dagster job execute` give the step other budgets, hence other layouts.

    One thread keeps both searches in this process (a pool start costs seconds); the two
    islands stand for a larger budget's layout.
    """
    monkeypatch.setenv("FOREX_ASSETS_STEP_THREADS", "1")
    bars = random_walk(2000, seed=4)
    data = SearchData(
        Market.from_bars(bars),
        RuleInputs.from_bars(bars),
        Contract.for_symbol("EURUSD"),
        preset("ftmo_challenge"),
    )
    budget = EvolutionSettings(max_generations=2, migration_interval=1, candidates=3)
    small = evolve(data, budget, tmp_path)  # islands from the budget of one thread
    large = evolve(data, dataclasses.replace(budget, islands=2), tmp_path)
    assert (len(small.search.restarts), len(large.search.restarts)) == (1, 2)
    assert large.search.checkpoint.resumed_epochs == 0
    assert large.search.checkpoint.other_searches[0][1] == ("islands", "population_sizes")
    again = evolve(data, budget, tmp_path)
    assert again.search.checkpoint.directory == small.search.checkpoint.directory
    assert again.search.checkpoint.resumed_epochs == 2
    assert [s.fitness for s in again.strategies] == [s.fitness for s in small.strategies]
