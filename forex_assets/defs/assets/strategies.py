"""Strategies: CMA-ES island search under prop-firm rules, and a decorrelated portfolio."""

import dataclasses
import hashlib
import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from forex_assets.code_version import code_version
from forex_assets.compute.plan import Pool
from forex_assets.defs.assets.markdown import markdown_image, markdown_table
from forex_assets.defs.keys import (
    EVOLVED_STRATEGIES,
    STRATEGIES_GROUP,
    STRATEGY_PORTFOLIO,
    timeframe_bars_key,
)
from forex_assets.defs.resources import (
    DuckDBCatalogResource,
    MarketCalendarResource,
    ModelStoreResource,
)
from forex_assets.features.feature_config import FeatureSettings
from forex_assets.market.contract import Contract
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.models.evaluation import EquityCurve
from forex_assets.models.plots import equity_png
from forex_assets.partitions import symbol_partitions
from forex_assets.prop_firms.registry import preset
from forex_assets.storage.strategy_ledger import StrategyRecord, record_strategies
from forex_assets.strategies.backtest.market import Market
from forex_assets.strategies.backtest.rules import TradeRules
from forex_assets.strategies.backtest.run import backtest
from forex_assets.strategies.evolution import Evolution, EvolutionSettings, evolve
from forex_assets.strategies.fitness import SearchData
from forex_assets.strategies.genes import GENE_NAMES, RuleInputs, describe, signals, trade_rules
from forex_assets.strategies.portfolio import select_portfolio
from forex_assets.strategies.regimes import adx_regimes, regime_shares

GENE_COLUMNS = [f"gene_{name}" for name in GENE_NAMES]


class EvolutionConfig(dg.Config):
    prop_firm: str = "ftmo_challenge"
    holdout_share: float = 0.25
    islands: int = 0  # 0: as many as the step's CPU budget runs at once
    max_generations: int = 40
    migration_interval: int = 10
    seed: int = 1
    time_budget_s: float = 600.0
    max_evaluations: int = 0  # 0: no evaluation budget beyond the generations
    candidates: int = 40
    risk_fraction: float = 0.01


class PortfolioConfig(dg.Config):
    max_correlation: float = 0.7
    max_strategies: int = 20


def _search_data(
    bars: pl.DataFrame, symbol: str, prop_firm: str, risk: float, calendar: FxCalendar
) -> SearchData:
    return SearchData(
        Market.from_bars(bars, calendar),
        RuleInputs.from_bars(bars),
        Contract.for_symbol(symbol),
        preset(prop_firm),
        risk_fraction=risk,
    )


def _checkpoint_root(
    model_store: ModelStoreResource, symbol: str, config: EvolutionConfig, data: SearchData
) -> Path:
    """Where this config's searches on these bars log; `island_search` puts each island
    layout (it follows the step's CPU budget) in its own directory below.

    Keyed by the config and the content of the bars the objective reads, not their count:
    corrected bars of the same length must not resume a log whose fitness values they
    would not reproduce.
    """
    digest = hashlib.sha256(config.model_dump_json().encode())
    for field in dataclasses.fields(data.market):
        value = getattr(data.market, field.name)
        if isinstance(value, np.ndarray):
            digest.update(field.name.encode())
            digest.update(np.ascontiguousarray(value).tobytes())
    return model_store.run_directory(symbol, f"evolution-{digest.hexdigest()[:12]}")


def _history_table(evolution: Evolution) -> str:
    """Best prop-firm score so far per island and generation (every k-th generation).

    The search minimizes minus the score; the table shows the score itself.
    """
    history = pl.DataFrame(evolution.search.history)
    table = (
        history.group_by("generation", "island")
        .agg((-pl.col("best_so_far")).max())
        .sort("island", "generation")
        .pivot("island", index="generation", values="best_so_far")
        .sort("generation")
    )
    every = max(1, table.height // 20)
    table = table.filter(pl.col("generation") % every == 0)
    return markdown_table(table.rename(lambda c: c if c == "generation" else f"island {c}"))


def _strategies_frame(evolution: Evolution) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "rank": s.rank,
                "fitness": s.fitness,
                **dict(zip(GENE_COLUMNS, map(float, s.genes), strict=True)),
                **{f"train_{k}": v for k, v in s.metrics.items()},
                "train_verdict": s.verdict,
                "months_passed": s.months_passed,
                "months_validated": len(s.months),
                "month_verdicts": json.dumps([m.verdict for m in s.months]),
            }
            for s in evolution.strategies
        ]
    )


def _equity_plot(data: SearchData, times: pl.Series, genes: np.ndarray, title: str) -> str:
    run = backtest(
        data.market,
        signals(data.inputs, genes)[0],
        TradeRules.from_row(trade_rules(genes)[0]),
        data.contract,
    )
    curve = EquityCurve(
        "best", 0, times.dt.epoch("us").to_numpy(), run.equity / data.initial_equity
    )
    return markdown_image(equity_png([curve], title), title)


def build_strategy_assets(settings: FeatureSettings) -> list[dg.AssetsDefinition]:
    bars_key = timeframe_bars_key(settings.base_timeframe)
    timeframe = settings.base_timeframe.value

    @dg.asset(
        key=EVOLVED_STRATEGIES,
        ins={"bars": dg.AssetIn(bars_key)},
        partitions_def=symbol_partitions,
        group_name=STRATEGIES_GROUP,
        pool=Pool.TRAINING.value,
        kinds={"polars", "parquet"},
        description=(
            f"CMA-ES island search of strategy genes on {timeframe} bars under prop-firm "
            "rules (training period), the best distinct candidates validated month by month "
            "on the held-out period. Checkpointed per island layout (it follows the step's "
            "CPU budget): a re-executed run resumes its own layout's search, another budget "
            "starts its own; damaged or edited checkpoint files are moved to damaged/ with "
            "a warning and the search resumes from the last good epoch."
        ),
    )
    def evolved_strategies(
        context: dg.AssetExecutionContext,
        config: EvolutionConfig,
        model_store: ModelStoreResource,
        duckdb_catalog: DuckDBCatalogResource,
        market_calendar: MarketCalendarResource,
        bars: pl.DataFrame,
    ) -> dg.Output:
        symbol = context.partition_key
        complete = bars.filter(pl.col("complete"))
        data = _search_data(
            complete, symbol, config.prop_firm, config.risk_fraction, market_calendar.calendar
        )
        evolution = evolve(
            data,
            EvolutionSettings(
                holdout_share=config.holdout_share,
                islands=config.islands or None,
                max_generations=config.max_generations,
                migration_interval=config.migration_interval,
                seed=config.seed,
                time_budget_s=config.time_budget_s,
                max_evaluations=config.max_evaluations or None,
                candidates=config.candidates,
            ),
            _checkpoint_root(model_store, symbol, config, data),
        )
        checkpoint = evolution.search.checkpoint
        for message in checkpoint.warnings():
            context.log.warning(message)
        context.log.info(checkpoint.describe())
        # Paper trading replays exactly the bars the search never saw.
        holdout_start = complete.get_column("time")[evolution.training_bars]
        frame = _strategies_frame(evolution).with_columns(
            holdout_start=pl.lit(holdout_start, dtype=complete.schema["time"])
        )
        record_strategies(
            duckdb_catalog.get_catalog(),
            [
                StrategyRecord(
                    symbol,
                    context.run.run_id,
                    s.rank,
                    describe(s.genes),
                    s.fitness,
                    s.metrics,
                    s.verdict,
                    s.months_passed,
                    len(s.months),
                    code_version(),
                )
                for s in evolution.strategies
            ],
        )
        best = evolution.strategies[0]
        search = evolution.search
        return dg.Output(
            frame,
            metadata={
                "prop_firm": config.prop_firm,
                "islands": len(search.restarts),
                "evaluations": search.evaluations,
                "generations": search.generations,
                "stopped_by": search.stopped_by,
                "restarts": dg.MetadataValue.json({str(k): v for k, v in search.restarts.items()}),
                "best_fitness_by_island_and_generation": dg.MetadataValue.md(
                    _history_table(evolution)
                ),
                "best_training_verdict": best.verdict,
                "best_validation_months_passed": f"{best.months_passed} of {len(best.months)}",
                "best_failed_rule": next(
                    (m.verdict for m in best.months if m.verdict.startswith("failed")), "none"
                ),
                "best_genes": dg.MetadataValue.json(describe(best.genes)),
                "training_bars": evolution.training_bars,
                "holdout_bars": evolution.holdout_bars,
                "holdout_start": str(holdout_start),
                "checkpoint": dg.MetadataValue.path(str(checkpoint.directory)),
                "checkpoint_resumed_epochs": checkpoint.resumed_epochs,
                "checkpoint_files_set_aside": len(checkpoint.set_aside),
                "equity_best": dg.MetadataValue.md(
                    _equity_plot(
                        data,
                        complete.get_column("time"),
                        best.genes[None, :],
                        f"{symbol} best evolved strategy (training + held-out)",
                    )
                ),
            },
        )

    @dg.asset(
        key=STRATEGY_PORTFOLIO,
        ins={"strategies": dg.AssetIn(EVOLVED_STRATEGIES), "bars": dg.AssetIn(bars_key)},
        partitions_def=symbol_partitions,
        group_name=STRATEGIES_GROUP,
        kinds={"polars", "parquet"},
        description=(
            "Up to 20 evolved strategies chosen greedily by training fitness, each with signal "
            "correlation below 0.7 to every one already chosen, with the ADX regime mix."
        ),
    )
    def strategy_portfolio(
        context: dg.AssetExecutionContext,
        config: PortfolioConfig,
        strategies: pl.DataFrame,
        bars: pl.DataFrame,
    ) -> dg.Output:
        complete = bars.filter(pl.col("complete"))
        inputs = RuleInputs.from_bars(complete)
        genes = strategies.select(GENE_COLUMNS).to_numpy()
        candidate_signals = signals(inputs, genes)
        portfolio = select_portfolio(
            strategies.get_column("fitness").to_numpy(),
            candidate_signals,
            config.max_correlation,
            config.max_strategies,
        )
        members = strategies[list(portfolio.members)]
        regimes = adx_regimes(
            *(complete.get_column(c).to_numpy() for c in ("high", "low", "close"))
        )
        correlation = pl.DataFrame(
            portfolio.correlation, schema=[f"rank {r}" for r in members.get_column("rank")]
        )
        context.log.info(f"{members.height} of {strategies.height} strategies selected")
        return dg.Output(
            members,
            metadata={
                "strategies": members.height,
                "candidates": strategies.height,
                "max_correlation": config.max_correlation,
                "members": dg.MetadataValue.md(
                    markdown_table(
                        members.select("rank", "fitness", "train_verdict", "months_passed")
                    )
                ),
                "signal_correlation": dg.MetadataValue.md(markdown_table(correlation)),
                "regime_shares": dg.MetadataValue.json(regime_shares(regimes)),
            },
        )

    return [evolved_strategies, strategy_portfolio]
